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
    totals = torch.zeros(6, dtype=torch.float64, device=device)  # loss, ce, bce, dice, micro-batches, images
    for _ in range(engine.gradient_accumulation_steps()):
        batch = next(stream, None)
        if batch is None:
            raise ValueError("data: the batch stream ended; the loader must resample shards endlessly for training")
        batch = batch.to(device, dtype)
        out = engine(**batch.model_inputs())
        engine.backward(out.loss + zero_touch(engine.module))
        engine.step()
        losses = [out.loss, out.ce_loss, out.bce_loss, out.dice_loss]
        totals += torch.tensor([float(x.detach()) for x in losses] + [1.0, len(batch.original_sizes)],
                               dtype=torch.float64, device=device)
    skipped = torch.tensor([now - before for now, before in zip(task.skipped_counts(), skipped_before)],
                           dtype=torch.float64, device=device)
    totals = torch.cat([totals, skipped])
    dist.all_reduce(totals)
    elapsed = max(time.perf_counter() - began, 1e-9)
    micro = float(totals[4])
    return StepMetrics(
        step=step,
        loss=float(totals[0]) / micro,
        ce_loss=float(totals[1]) / micro,
        bce_loss=float(totals[2]) / micro,
        dice_loss=float(totals[3]) / micro,
        lr=lr,
        samples_per_s=float(totals[5]) / elapsed,
        skipped_samples=int(totals[6]),
        skipped_shards=int(totals[7]),
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
