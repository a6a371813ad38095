"""The DeepSpeed engine: the only place that calls `deepspeed.initialize`.

The DeepSpeed JSON is derived from the typed `TrainConfig` (`TrainConfig.to_deepspeed_dict`), never hand-edited.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


def create_engine(model: nn.Module, ds_config: dict[str, Any]) -> Any:
    """Wrap `model` in a DeepSpeed engine (optimizer + WarmupDecayLR scheduler from `ds_config`).

    Only parameters with `requires_grad` (set by the trainable policy, pipelines/train/freeze.py) are optimised.
    The torch.distributed process group must already exist (Ray Train creates it); DeepSpeed adopts it.

    Returns:
        The `deepspeed.DeepSpeedEngine`; its `lr_scheduler` attribute is the scheduler.
    """
    import deepspeed  # heavy import (builds/loads ops): only inside workers

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("trainable: the trainable-parameter policy left no parameter with requires_grad; "
                         "choose a policy that trains something (e.g. trainable.policy=full)")
    with _arch_list_deepspeed_can_parse():
        engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=params, config=ds_config)
    return engine


@contextmanager
def _arch_list_deepspeed_can_parse() -> Iterator[None]:
    """Drop architecture-specific suffixes ("9.0a" -> "9.0") from TORCH_CUDA_ARCH_LIST while DeepSpeed builds ops.

    CUDA images for Hopper set TORCH_CUDA_ARCH_LIST=9.0a; DeepSpeed 0.19.8 parses every entry as integers and its JIT
    build of FusedAdam (the GPU default, torch_adam unset) fails with "invalid literal for int() with base 10: '0a'"
    (seen on an H200). FusedAdam needs no architecture-specific instruction, so the plain architecture is enough.
    """
    saved = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if saved is not None:
        os.environ["TORCH_CUDA_ARCH_LIST"] = parseable_arch_list(saved)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["TORCH_CUDA_ARCH_LIST"] = saved


def parseable_arch_list(value: str) -> str:
    """Each entry's minor version loses its letter suffix: "9.0a;8.0+PTX 10.0f" -> "9.0;8.0+PTX 10.0"."""
    return re.sub(r"(\d+\.\d+)[a-z]+", r"\1", value)


def current_lr(engine: Any) -> float:
    """Learning rate of the first parameter group after the last scheduler step."""
    return float(engine.get_lr()[0])


def train_dtype(ds_config: dict[str, Any]) -> torch.dtype:
    """The dtype DeepSpeed keeps module parameters in: float image inputs are cast to it."""
    return torch.bfloat16 if ds_config.get("bf16", {}).get("enabled") else torch.float32
