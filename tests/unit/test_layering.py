"""Import direction (style.md §2): schemas -> stdlib/numpy/pyarrow/torch; model -> torch/transformers (+peft,
safetensors, tokenizers, segment_anything.modeling in model/sam.py only); pipelines -> schemas + model; jobs ->
pipelines and below; bench -> jobs and below; nothing but jobs (and bench) imports jobs. The CPU demo's warm start
lives in demo/ behind a one-way wall: demo may import anything of ours, nothing outside demo/ imports demo."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
OURS = {"schemas", "model", "pipelines", "jobs", "bench", "tests", "demo"}
ALLOWED_OURS = {
    "schemas": {"schemas"},
    "model": {"model"},
    "pipelines": {"schemas", "model", "pipelines"},
    "jobs": {"schemas", "model", "pipelines", "jobs"},
    "bench": {"schemas", "model", "pipelines", "jobs", "bench"},
}
FORBIDDEN_THIRD_PARTY = {
    "schemas": {"ray", "deepspeed", "transformers", "webdataset", "pandas", "omegaconf", "segment_anything"},
    "model": {"ray", "deepspeed", "webdataset", "pandas", "pyarrow", "omegaconf", "fsspec"},
    "pipelines": set(),
    "jobs": set(),
    "bench": set(),
}
DYNAMIC_IMPORTS = {"import_module", "__import__"}


def _imports(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import, and of every `importlib.import_module` / `__import__` of a literal
    name (the first f-string part counts: `import_module(f"demo.{name}")` names demo)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and _called(node.func) in DYNAMIC_IMPORTS:
            name = _literal_prefix(node.args[0])
            if name:
                found.append((node.lineno, name))
    return found


def _called(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _literal_prefix(arg: ast.expr) -> str:
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        return str(arg.values[0].value)
    return ""


def _files(package: str) -> list[pathlib.Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED_OURS))
def test_import_direction(package):
    bad = []
    for path in _files(package):
        for lineno, name in _imports(path):
            top = name.split(".")[0]
            rel = path.relative_to(ROOT)
            if top in OURS and top not in ALLOWED_OURS[package]:
                bad.append(f"{rel}:{lineno} imports {name}")
            if top in FORBIDDEN_THIRD_PARTY[package]:
                bad.append(f"{rel}:{lineno} imports {name}")
            if package == "model" and name.startswith("torch.distributed"):
                bad.append(f"{rel}:{lineno} imports {name} (no rank logic in model/)")
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_segment_anything_is_imported_in_one_place():
    users = sorted(
        str(path.relative_to(ROOT))
        for package in ("schemas", "model", "pipelines", "jobs", "demo")
        for path in _files(package)
        if any(name.split(".")[0] == "segment_anything" for _, name in _imports(path))
        or "segment_anything" in path.read_text()
        and "importlib" in path.read_text()
    )
    assert users in ([], ["model/sam.py"]), users


def test_nothing_imports_jobs():
    bad = [
        f"{path.relative_to(ROOT)}:{lineno}"
        for package in ("schemas", "model", "pipelines")
        for path in _files(package)
        for lineno, name in _imports(path)
        if name.split(".")[0] == "jobs"
    ]
    assert not bad, bad


def test_nothing_outside_demo_imports_demo():
    """The wall is one-way: demo/ builds on everything else; the product (and its tests, benchmarks and scripts)
    runs without demo/."""
    packages = [d.name for d in sorted(ROOT.iterdir()) if (d / "__init__.py").exists() and d.name != "demo"]
    outside = [*sorted(ROOT.glob("*.py")), *(path for package in packages for path in _files(package))]
    bad = [
        f"{path.relative_to(ROOT)}:{lineno} imports {name}"
        for path in outside
        for lineno, name in _imports(path)
        if name.split(".")[0] == "demo"
    ]
    assert outside and not bad, bad


def test_the_wall_check_sees_a_demo_import(tmp_path):
    """The scan above would pass vacuously if it missed an import form; each of these is caught."""
    sample = tmp_path / "sample.py"
    sample.write_text('import demo\nfrom demo.language import x\nimport importlib\n'
                      'importlib.import_module("demo.jobs")\nimportlib.import_module(f"demo.{x}")\n')
    assert [name.split(".")[0] for _, name in _imports(sample)].count("demo") == 4
