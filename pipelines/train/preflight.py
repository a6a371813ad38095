"""Checks that need I/O and run in the job driver before any Ray worker starts, so a bad configuration never
starts a cluster job. Pure-value checks (unknown preset, bad rates, ...) live in each config's `__post_init__`."""

from __future__ import annotations

from model.config import ReadModelConfig
from pipelines import storage
from pipelines.train.config import TrainConfig


def check_config(cfg: TrainConfig) -> dict[str, list[list[str]]]:
    """Raise ValueError naming the config key when the run cannot start; returns {stream name: [shard URLs per part]}.

    Checks: every `data.streams[i].shards` pattern matches existing shards; the model weight paths exist.
    """
    urls = cfg.data.validate_shards()
    check_weight_paths(cfg.model)
    return urls


def check_weight_paths(model: ReadModelConfig) -> None:
    """Raise ValueError naming the `model.<key>` whose weight path is set but does not exist."""
    for key, path in model.weight_paths().items():
        if path and not storage.exists(path):
            raise ValueError(f"model.{key}: {path!r} does not exist; fix the path or leave it empty for random init")


def absolute_local_paths(cfg: TrainConfig) -> None:
    """Make local (non-URI) storage, shard and weight paths absolute in place: workers may run in another
    directory."""
    fix = storage.absolute_local
    cfg.storage_path = fix(cfg.storage_path)
    cfg.shards_root = fix(cfg.shards_root)
    cfg.model = cfg.model.map_weight_paths(fix)
    for stream in cfg.data.streams:
        stream.shards = "::".join(fix(part.strip()) for part in stream.shards.split("::"))
