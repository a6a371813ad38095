"""`train_loop_per_worker`: what every Ray Train worker runs.

The data stream and the RNG are deterministic functions of (seed, rank, step): the stream is re-created with a seed
derived from the step at every checkpoint boundary, and torch/numpy/random are re-seeded before every optimizer
step. Resuming from the checkpoint at step k therefore replays exactly what an uninterrupted run does after step k.
"""

from __future__ import annotations

import os
import random
import sys
import time
from typing import Any

import numpy as np
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist

from pipelines import storage
from pipelines.train.checkpoint import restore_latest, save_and_report
from pipelines.train.config import TrainConfig
from pipelines.train.engine import create_engine, train_dtype
from pipelines.train.export import export_model
from pipelines.train.metrics import METRICS_FILE, MetricsLog, StepMetrics, format_progress
from pipelines.train.step import optimizer_step
from pipelines.train.task import load_task


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train entry point. `config["cfg"]` is the TrainConfig; the Ray context is read here, once."""
    cfg: TrainConfig = config["cfg"]
    context = ray.train.get_context()
    device = ray.train.torch.get_device() if cfg.use_gpu else torch.device("cpu")
    train(cfg, rank=context.get_world_rank(), world_size=context.get_world_size(), device=device)


def derive_seed(*parts: int) -> int:
    """A 32-bit seed that is a deterministic function of `parts` (seed, rank, step, ...)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(cfg: TrainConfig, *, rank: int, world_size: int, device: torch.device) -> None:
    """Train from the newest checkpoint (or from scratch) to `cfg.last_step`, then export on rank 0."""
    seed_everything(cfg.seed)  # identical initial weights on every rank
    task = load_task(cfg.task)
    ds_config = cfg.to_deepspeed_dict()
    engine = create_engine(task.build_model(cfg, device=device), ds_config)
    dtype = train_dtype(ds_config)
    start = restore_latest(engine, save_frozen=cfg.checkpoint_frozen_parameters)
    log = MetricsLog(storage.join(cfg.run_dir, METRICS_FILE), resume_step=start) if rank == 0 else None
    if rank == 0:
        print(f"[train] {cfg.name}: steps {start + 1}..{cfg.last_step} of {cfg.total_steps}, {world_size} workers, "
              f"{'resumed from step ' + str(start) if start else 'fresh start'}", flush=True)
    stream, skipped_before, began = None, task.skipped_counts(), time.perf_counter()
    for step in range(start + 1, cfg.last_step + 1):
        if stream is None or (step - 1) % cfg.checkpoint_every == 0:
            seed = derive_seed(cfg.seed, cfg.data.seed, step - 1)
            stream = iter(task.batches(cfg, rank=rank, world_size=world_size, seed=seed))
        seed_everything(derive_seed(cfg.seed, rank, step))
        row = optimizer_step(engine, stream, step=step, device=device, dtype=dtype, task=task,
                             skipped_before=skipped_before)
        skipped_before = task.skipped_counts()
        if log is not None:
            log.append(row)
            if step % cfg.log_every == 0 or step == cfg.last_step:
                log.flush()
                eta = (time.perf_counter() - began) / (step - start) * (cfg.last_step - step)
                memory = ""
                if device.type == "cuda":
                    memory = f" peak {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB"
                print(f"[train] {format_progress(row, total_steps=cfg.last_step, eta_s=eta)}{memory}", flush=True)
        if cfg.fail_at_step == step and rank == world_size - 1:
            _fail_once(cfg, step)
        if step % cfg.checkpoint_every == 0 or step == cfg.last_step:
            if log is not None:
                log.flush()
            save_and_report(engine, step=step, rank=rank, world_size=world_size, metrics=_as_dict(row),
                            save_frozen=cfg.checkpoint_frozen_parameters)
    if cfg.export:
        if rank == 0:
            export_model(lambda out_dir: task.export(engine.module, cfg, out_dir), storage.join(cfg.run_dir, "export"))
            print(f"[train] exported {storage.join(cfg.run_dir, 'export')}", flush=True)
        dist.barrier()


def _fail_once(cfg: TrainConfig, step: int) -> None:
    """Test hook (fail_at_step): kill this worker process the first time the run reaches `step`."""
    marker = storage.join(cfg.run_dir, f".fail_at_step-{step}")
    if storage.exists(marker):
        return
    storage.atomic_write_bytes(marker, b"")
    print(f"[train] fail_at_step={step}: killing worker process {os.getpid()}", file=sys.stderr, flush=True)
    os._exit(1)


def _as_dict(row: StepMetrics) -> dict[str, float]:
    return {k: float(v) for k, v in row.row().items()}
