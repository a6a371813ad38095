"""Typed OmegaConf config loading shared by every job: defaults <- YAML file(s) <- dotlist overrides."""

from __future__ import annotations

import sys
from typing import TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

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
        merged = OmegaConf.merge(
            OmegaConf.structured(schema),
            OmegaConf.create(base or {}),
            *[OmegaConf.load(f) for f in files],
            OmegaConf.from_dotlist(overrides),
        )
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except FileNotFoundError as err:
        raise SystemExit(f"config file not found: {err.filename}") from err
    except (OmegaConfBaseException, ValueError, TypeError) as err:
        raise SystemExit(f"bad configuration: {err}") from err


def config_yaml(cfg: object) -> str:
    """The resolved config as YAML; `--config` on this text reproduces the run."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
