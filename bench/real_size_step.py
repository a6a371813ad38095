"""Real-size training step on one GPU (no figures without CUDA): the READ-7B recipe's DeepSpeed update, timed.

What runs is `jobs.train`'s update without Ray: the ReferSeg recipe (configs/train_read7b_referseg.yaml) with random
weights (`required=[]`, so no checkpoint is needed), its DeepSpeed JSON (ZeRO-2, bf16, DeepSpeed's fused AdamW,
WarmupDecayLR), `ReadTask`'s model build (LoRA policy) and loader over synthetic 640x480 shards of the recipe's four
stream kinds with its rates, and `pipelines.train.step.optimizer_step` (micro-batch 2 x grad-accum 10 = 20 images per
update), on one process with NCCL. Prints seconds per update (median after the first), images/s, peak GPU memory,
and the loader's images/s with the recipe's DataLoader workers; the loader/GPU ratio must be >= 2.

    python -m bench.real_size_step [--quick] [dotlist overrides, e.g. model.preset=read-13b gradient_checkpointing=true]
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from bench.flops import CountingStream, gpu_kind_of, mfu, read_model_flops
from bench.train import synthetic_shards
from jobs._config import load_config
from pipelines.data.config import StreamConfig
from pipelines.train.config import TrainConfig

RECIPE = Path(__file__).resolve().parents[1] / "configs" / "train_read7b_referseg.yaml"
STREAMS = (("refer_seg", "refcoco-train", 12.0), ("correct_refer_seg", "refcoco_fp-train", 2.0),
           ("vqa", "llava_vqa-train", 2.0), ("neg_refer_seg", "R-refcoco-train", 1.0))


def recipe_config(shards_root: Path, overrides: list[str]) -> TrainConfig:
    """The recipe with random weights, one worker, its streams pointed at the synthetic shards."""
    cfg = load_config(TrainConfig, ["--config", str(RECIPE), "required=[]", "num_workers=1",
                                    f"shards_root={shards_root}", "export=false", *overrides])
    cfg.data.streams = [StreamConfig(name=name, shards=str(shards_root / folder / "shard-*.tar"), rate=rate)
                        for name, folder, rate in STREAMS]
    return cfg


def _single_process_group(device: torch.device) -> None:
    """A one-rank group (NCCL on a GPU, gloo on CPU) unless one exists: what Ray Train creates per worker."""
    if torch.distributed.is_initialized():
        return
    os.environ.update({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": os.environ.get("MASTER_PORT", "29533")})
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl", device_id=device)
    else:
        torch.distributed.init_process_group("gloo")


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0


def measure(cfg: TrainConfig, *, device: torch.device, updates: int, loader_batches: int) -> dict[str, float]:
    """Build, initialise and run `updates` optimizer updates; then time the loader alone. Returns the figures
    (peak_gib is 0 on CPU, where the same code runs the tiny preset in the tests)."""
    from pipelines.train.engine import create_engine, train_dtype
    from pipelines.train.step import optimizer_step
    from pipelines.train.task import ReadTask

    _single_process_group(device)
    torch.manual_seed(cfg.seed)
    task = ReadTask()
    began = time.perf_counter()
    model = task.build_model(cfg, device=device)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    built = time.perf_counter() - began
    began = time.perf_counter()
    ds_config = cfg.to_deepspeed_dict()
    engine = create_engine(model, ds_config)
    initialised = time.perf_counter() - began
    stream = CountingStream(iter(task.batches(cfg, rank=0, world_size=1, seed=cfg.seed)))
    seconds, losses, flops = [], [], []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for step in range(1, updates + 1):
        _synchronize(device)
        counted = len(stream.batches)
        began = time.perf_counter()
        row = optimizer_step(engine, stream, step=step, device=device, dtype=train_dtype(ds_config), task=task,
                             skipped_before=task.skipped_counts())
        _synchronize(device)
        seconds.append(time.perf_counter() - began)
        losses.append(row.loss)
        taken = stream.batches[counted:]
        flops.append(read_model_flops(model, [n for lengths, _ in taken for n in lengths],
                                      sum(i for _, i in taken))["total"])
        terms = " ".join(f"{k.removesuffix('_loss')} {v:.3f}" for k, v in row.losses.items())
        print(f"[bench.real_size_step] update {step}: {seconds[-1]:.2f}s, loss {row.loss:.3f} ({terms}), "
              f"peak {_peak_gib(device):.1f} GiB", flush=True)
    if not all(math.isfinite(x) for x in losses):
        raise RuntimeError(f"non-finite loss in {losses}")
    peak = _peak_gib(device)
    images = cfg.data.batch_size * cfg.gradient_accumulation_steps
    update_s = statistics.median(seconds[1:] or seconds)
    update_flops = statistics.median(flops[1:] or flops)
    kind = gpu_kind_of(torch.cuda.get_device_name(device)) if device.type == "cuda" else ""
    loader = iter(task.batches(cfg, rank=0, world_size=1, seed=cfg.seed + 1))
    next(loader)  # worker start-up and shuffle-buffer fill
    began, loaded = time.perf_counter(), 0
    for _ in range(loader_batches):
        loaded += len(next(loader).original_sizes)
    loader_rate = loaded / (time.perf_counter() - began)
    del engine, model, stream, loader
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"params_b": total / 1e9, "trainable_m": trainable / 1e6, "build_s": built, "init_s": initialised,
            "first_update_s": seconds[0], "update_s": update_s, "images_per_s": images / update_s,
            "peak_gib": peak, "loader_images_per_s": loader_rate, "update_tflop": update_flops / 1e12,
            "mfu": mfu(update_flops, update_s, gpu_kind=kind) if kind else float("nan")}


def run(quick: bool, overrides: list[str] | None = None) -> list[dict]:
    if not torch.cuda.is_available():
        print("[bench.real_size_step] no CUDA device: skipped (run it on a GPU machine)", flush=True)
        return []
    cfg = recipe_config(synthetic_shards(640, 480, 48), list(overrides or []))
    figures = measure(cfg, device=torch.device("cuda", 0), updates=3 if quick else 6,
                      loader_batches=20 if quick else 60)
    label = f"{cfg.model.preset}, {torch.cuda.get_device_name(0)}"
    ratio = figures["loader_images_per_s"] / figures["images_per_s"]
    print(f"[bench.real_size_step] {label}: {figures['params_b']:.2f}B params, {figures['trainable_m']:.1f}M "
          f"trainable; build {figures['build_s']:.0f}s, DeepSpeed init {figures['init_s']:.0f}s; update "
          f"{figures['update_s']:.2f}s (first {figures['first_update_s']:.1f}s) = {figures['images_per_s']:.2f} "
          f"images/s, {figures['update_tflop']:.0f} TFLOP per update (bench/flops.py), MFU {100 * figures['mfu']:.1f}%; "
          f"peak {figures['peak_gib']:.1f} GiB; loader {figures['loader_images_per_s']:.1f} images/s "
          f"({cfg.data.num_workers} workers), loader/GPU = {ratio:.1f} (goal >= 2)", flush=True)
    return [
        {"bench": "real_size_step", "metric": f"update seconds ({label})", "value": figures["update_s"], "unit": "s",
         "goal": ""},
        {"bench": "real_size_step", "metric": f"train images/s per GPU ({label})", "value": figures["images_per_s"],
         "unit": "images/s", "goal": ""},
        {"bench": "real_size_step", "metric": f"MFU ({label}, bench/flops.py)", "value": 100 * figures["mfu"],
         "unit": "%", "goal": ">= 35"},
        {"bench": "real_size_step", "metric": f"peak GPU memory ({label})", "value": figures["peak_gib"],
         "unit": "GiB", "goal": "fits one 80 GiB GPU"},
        {"bench": "real_size_step", "metric": "loader / GPU train images/s", "value": ratio, "unit": "x",
         "goal": ">= 2"},
    ]


if __name__ == "__main__":
    args = sys.argv[1:]
    run(quick="--quick" in args, overrides=[a for a in args if not a.startswith("--")])
