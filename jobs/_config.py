"""Typed OmegaConf config loading shared by every job: defaults <- YAML file(s) <- dotlist overrides."""

from __future__ import annotations

import sys
from typing import Callable, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.nodes import StringNode
from omegaconf.errors import OmegaConfBaseException

from model.config import MOVED_KEYS as MODEL_MOVED_KEYS

T = TypeVar("T")


def load_config(schema: type[T], argv: list[str] | None, *, base: dict | None = None) -> T:
    """Merge `schema`'s typed defaults, `base` (defaults a job derives, e.g. from a checkpoint), `--config FILE.yaml`
    files and `key=value` overrides, later layers winning.

    Returns a real dataclass instance (its `__post_init__` validation has run). Exits with status 2 and a message
    naming the key on bad input, so a typo never starts a cluster job.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    files, overrides = [], []
    it = iter(argv)
    for arg in it:
        if arg == "--config":
            files.append(next(it, None))
            if files[-1] is None:
                raise SystemExit("--config needs a YAML file path")
        elif arg.startswith("--config="):
            files.append(arg.split("=", 1)[1])
        elif "=" in arg:
            overrides.append(arg)
        else:
            raise SystemExit(f"unexpected argument {arg!r}: use key=value overrides or --config FILE.yaml")
    try:
        structured = OmegaConf.structured(schema)
        merged = OmegaConf.merge(
            structured,
            OmegaConf.create(base or {}),
            *[_upgraded(OmegaConf.load(f), where=f) for f in files],
            _overrides(structured, [_upgraded_override(o) for o in overrides]),
        )
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except FileNotFoundError as err:
        raise SystemExit(f"config file not found: {err.filename}") from err
    except (OmegaConfBaseException, ValueError, TypeError) as err:
        raise SystemExit(f"bad configuration: {err}") from err


def load_config_derived(schema: type[T], argv: list[str] | None, derive: Callable[[T], dict | None]) -> T:
    """`load_config` with a base layer the job derives from the config itself (e.g. the defaults a checkpoint it
    names brings): load once, call `derive(cfg)`, and load again on top of its dict (the user's keys still win)."""
    cfg = load_config(schema, argv)
    base = derive(cfg)
    return load_config(schema, argv, base=base) if base else cfg


MOVED_KEYS = {f"model.{old}": f"model.{new}" for old, new in MODEL_MOVED_KEYS.items()} | {
    "model.answer_style": "prompt_format.answer_style"}
"""Dotted keys of older configs (config.yaml files written before SasP, the tiny overrides and the prompt format
moved) -> where they live now. Old files and overrides still load; a note on stderr says what to write instead."""


_ABSENT = object()


def _upgraded(layer: DictConfig, *, where: str) -> DictConfig:
    """A YAML layer with MOVED_KEYS moved to their new place."""
    values = {old: OmegaConf.select(layer, old, default=_ABSENT) for old in MOVED_KEYS}
    values = {old: value for old, value in values.items() if value is not _ABSENT}
    if not values:
        return layer
    tree = OmegaConf.to_container(layer, resolve=False)
    for old in values:
        parent, _, leaf = old.rpartition(".")
        del tree[parent][leaf]
        print(f"{where}: {old} is now {MOVED_KEYS[old]} (read as such)", file=sys.stderr)
    upgraded = OmegaConf.create(tree)
    for old, value in values.items():
        OmegaConf.update(upgraded, MOVED_KEYS[old], value, force_add=True)
    return upgraded


def _upgraded_override(override: str) -> str:
    key, sep, value = override.partition("=")
    if key in MOVED_KEYS:
        print(f"override {key}=...: {key} is now {MOVED_KEYS[key]} (read as such)", file=sys.stderr)
        return f"{MOVED_KEYS[key]}{sep}{value}"
    return override


def _overrides(structured: DictConfig, overrides: list[str]) -> DictConfig:
    """`key=value` overrides as a config. A value of a string field is taken verbatim (a prompt such as
    "USER: ... ASSISTANT:" is not parsed as YAML); other values are parsed as OmegaConf's dotlist does."""
    parsed = OmegaConf.from_dotlist([o for o in overrides if not _is_string_field(structured, o.split("=", 1)[0])])
    for override in overrides:
        key, value = override.split("=", 1)
        if _is_string_field(structured, key):
            OmegaConf.update(parsed, key, value, force_add=True)
    return parsed


def _is_string_field(structured: DictConfig, key: str) -> bool:
    node = structured
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return False
        node = node._get_node(part)
    return isinstance(node, StringNode)


def config_yaml(cfg: object) -> str:
    """The resolved config as YAML; `--config` on this text reproduces the run."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def write_config(out: str, cfg: object, *, note: str = "") -> None:
    """The write-config part of every job: `out` created and the resolved config written as `out/config.yaml`
    (`note`, e.g. a comment line, appended), atomically."""
    from pipelines import storage

    storage.makedirs(out)
    storage.atomic_write_bytes(storage.join(out, "config.yaml"), (config_yaml(cfg) + note).encode())
