"""One optimizer update of a DeepSpeed engine over a batch stream (no Ray: the Ray Train loop and the GPU
benchmark both call it).

The torch.distributed process group must exist (the losses are averaged over ranks with all_reduce).
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.distributed as dist

from pipelines.train.engine import current_lr
from pipelines.train.metrics import StepMetrics
from pipelines.train.task import TrainTask


def optimizer_step(engine: Any, stream: Any, *, step: int, device: torch.device, dtype: torch.dtype,
                   task: TrainTask, skipped_before: tuple[int, int]) -> StepMetrics:
    """gradient_accumulation_steps micro-batches and one optimizer update; losses averaged over ranks."""
    began, lr = time.perf_counter(), current_lr(engine)
    names: tuple[str, ...] = ()
    sums: list[float] = []  # loss, then each term of `names`
    micro = images = 0
    for _ in range(engine.gradient_accumulation_steps()):
        batch = next(stream, None)
        if batch is None:
            raise ValueError("data: the batch stream ended; the loader must resample shards endlessly for training")
        batch = batch.to(device, dtype)
        out = engine(**batch.model_inputs())
        engine.backward(out.loss + zero_touch(engine.module))
        engine.step()
        if not names:
            names, sums = tuple(out.losses), [0.0] * (1 + len(out.losses))
        values = [out.loss, *(out.losses[k] for k in names)]
        sums = [a + float(v.detach()) for a, v in zip(sums, values)]
        micro, images = micro + 1, images + len(batch.original_sizes)
    skipped = [now - before for now, before in zip(task.skipped_counts(), skipped_before)]
    totals = torch.tensor([*sums, micro, images, *skipped], dtype=torch.float64, device=device)
    dist.all_reduce(totals)  # every rank's model reports the same loss terms, in the same order
    elapsed = max(time.perf_counter() - began, 1e-9)
    k = len(sums)
    micro_all = float(totals[k])
    return StepMetrics(
        step=step,
        loss=float(totals[0]) / micro_all,
        losses={name: float(totals[1 + i]) / micro_all for i, name in enumerate(names)},
        lr=lr,
        samples_per_s=float(totals[k + 1]) / elapsed,
        skipped_samples=int(totals[k + 2]),
        skipped_shards=int(totals[k + 3]),
    )


def zero_touch(module: torch.nn.Module) -> torch.Tensor:
    """0 * (one element of every trainable parameter), added to the loss before backward.

    A micro-batch without masks (VQA, negatives, false premises) leaves the SAM decoder and the [SEG] projection
    out of the graph, so those parameters get no gradient on that rank while another rank's do; ZeRO-2 then
    reduces gradient buckets of different sizes across ranks (gloo aborts: "Received data size doesn't match").
    Touching every trainable parameter gives each rank the same gradient set, with zero added to the values.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    return sum((p.reshape(-1)[0] for p in params), torch.zeros((), device=params[0].device)) * 0.0
