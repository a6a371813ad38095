"""What the training loop trains: a `TrainTask` builds the model, streams batches and exports the result.

The loop (pipelines/train/loop.py) is model-agnostic; `TrainConfig.task` names the task class by import path so a
test can swap in a small stand-in. `ReadTask` is the real one: READ from model/build.py, the trainable policy from
pipelines/train/freeze.py and the streaming loader from pipelines/data/stream.py.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from model.build import build_read, save_export
from pipelines.data.stream import ShardReadPolicy, StreamLoader, build_loader
from pipelines.data.transform import ModelInputSpec
from pipelines.train.freeze import apply_trainable_policy, merge_lora
from schemas.batch import TrainBatch

if TYPE_CHECKING:
    from pipelines.train.config import TrainConfig


class TrainTask(Protocol):
    """Model + data + export for the training loop. One instance per worker process."""

    def build_model(self, cfg: "TrainConfig", *, device: torch.device) -> nn.Module:
        """The model on `device` with the trainable policy applied. Must be identical on every rank for a seed.

        `forward(**TrainBatch.model_inputs())` returns an object with a 0-dim `loss` and `losses`, a dict of 0-dim terms.
        """
        ...

    def batches(self, cfg: "TrainConfig", *, rank: int, world_size: int, seed: int) -> Iterator[TrainBatch]:
        """An endless stream of micro-batches for this rank, a deterministic function of (seed, rank)."""
        ...

    def skipped_counts(self) -> tuple[int, int]:
        """(bad samples, unreadable shards) skipped so far by all the streams this task created (cumulative)."""
        ...

    def export(self, model: nn.Module, cfg: "TrainConfig", out_dir: str) -> None:
        """Write the trained model into the local folder `out_dir` (which exists and is empty)."""
        ...


def load_task(path: str) -> TrainTask:
    """Instantiate the task class named by `module:Class` (TrainConfig.task)."""
    module_name, _, class_name = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"task: cannot import {path!r} ({err}); use 'module:Class'") from err
    return cls()


class ReadTask:
    """READ (model/build.py) with the trainable policy (freeze.py), fed by the shard loader (pipelines/data)."""

    def __init__(self) -> None:
        self.tokenizer: Any = None
        self.spec: ModelInputSpec | None = None
        self._loaders: list[StreamLoader] = []

    def build_model(self, cfg: "TrainConfig", *, device: torch.device) -> nn.Module:
        model, self.tokenizer = build_read(cfg.model, device=device)
        apply_trainable_policy(model, cfg.trainable)
        if cfg.gradient_checkpointing:
            model.enable_gradient_checkpointing()
        self.spec = ModelInputSpec.from_model(model, cfg.prompt_format)
        return model

    def batches(self, cfg: "TrainConfig", *, rank: int, world_size: int, seed: int) -> Iterator[TrainBatch]:
        if self.spec is None:
            raise AssertionError("ReadTask.build_model must run before batches")
        policy = ShardReadPolicy(seed=seed, rank=rank, world_size=world_size)
        loader = build_loader(dataclasses.replace(cfg.data, seed=seed), policy, tokenizer=self.tokenizer,
                              spec=self.spec)
        self._loaders.append(loader)
        return iter(loader)

    def skipped_counts(self) -> tuple[int, int]:
        return (sum(x.skipped_samples for x in self._loaders), sum(x.skipped_shards for x in self._loaders))

    def export(self, model: nn.Module, cfg: "TrainConfig", out_dir: str) -> None:
        save_export(merge_lora(model), self.tokenizer, cfg.model, out_dir,
                    prompt_format=cfg.prompt_format)
