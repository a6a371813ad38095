"""Every `python -m jobs.<name> key=value ...` command the README shows is loaded with its job's typed config (the
job's own loader, no job run), so a renamed or removed key, a wrong type or a moved `--config` file fails here."""

from __future__ import annotations

import pathlib
import re
import shlex

import pytest

from jobs._config import load_config
from jobs.evaluate import load_evaluate_config
from jobs.predict import load_predict_config
from pipelines.augment.config import AugmentConfig
from pipelines.preprocess_config import PreprocessConfig
from pipelines.synth import SynthConfig
from pipelines.train.config import TrainConfig

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
LOADERS = {
    "jobs.train": lambda argv: load_config(TrainConfig, argv),
    "jobs.evaluate": load_evaluate_config,
    "jobs.predict": load_predict_config,
    "jobs.preprocess": lambda argv: load_config(PreprocessConfig, argv),
    "jobs.augment": lambda argv: load_config(AugmentConfig, argv),
    "jobs.synth": lambda argv: load_config(SynthConfig, argv),
}
"""Jobs whose arguments are a typed config (jobs.results and jobs.visualize take positional folders)."""


def readme_commands() -> list[tuple[int, str, list[str]]]:
    """(line, job, argv) of every `python -m jobs.*` command inside the README's code blocks, continuation lines
    joined, shell comments and `ray job submit ... --` prefixes dropped."""
    lines = README.read_text().splitlines()
    out, in_code, pending, start = [], False, "", 0
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if not in_code:
            continue
        text = re.sub(r"\s+#.*$", "", line) if not line.lstrip().startswith("#") else ""
        if not pending:
            start = number
        pending += " " + text.rstrip("\\").strip()
        if text.rstrip().endswith("\\"):
            continue
        match = re.search(r"python -m (jobs\.\w+)(.*)$", pending)
        if match and match.group(1) in LOADERS:
            out.append((start, match.group(1), shlex.split(match.group(2))))
        pending = ""
    return out


COMMANDS = readme_commands()


def test_the_readme_shows_the_jobs():
    shown = {job for _, job, _ in COMMANDS}
    assert {"jobs.train", "jobs.evaluate", "jobs.predict", "jobs.preprocess"} <= shown, shown


@pytest.mark.parametrize("line,job,argv", COMMANDS, ids=[f"README:{n}:{j}" for n, j, _ in COMMANDS])
def test_readme_command_loads(line, job, argv, monkeypatch):
    monkeypatch.chdir(ROOT)  # --config paths are relative to the repository root
    argv = [a for a in argv if a not in ("$T", "...")]  # a shell variable / "and the rest" in the README's text
    configs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"]
    if any(c.startswith("runs/") for c in configs):
        pytest.skip(f"README line {line} reruns the config.yaml an earlier command wrote ({configs})")
    try:
        LOADERS[job](argv)
    except SystemExit as err:
        pytest.fail(f"README line {line}: `python -m {job} {' '.join(argv)}` does not load: {err}")
