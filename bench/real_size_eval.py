"""Real-size evaluation throughput (figures only with CUDA): queries/s of the evaluation's `Evaluator` for
teacher-forced and generation queries, generation one query at a time (protocol=read: READ's way) and decoded in
batches (protocol=clean: `READ.generate_batch`), and the projected hours for an FP-RefCOCO-sized split.

    python -m bench.real_size_eval [--quick] [dotlist overrides of ReadModelConfig, e.g. model.preset=read-13b]

Random read-7b weights in bf16, 640x480 synthetic shard samples (bench.train's), at most `max_new_tokens=16` new
tokens (random weights rarely stop earlier: an upper bound of the real decode length's cost).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from bench.train import synthetic_shards
from jobs._config import load_config
from model.build import build_read
from model.config import ReadModelConfig
from pipelines.evaluate.metrics import GENERATE, TEACHER_FORCED
from pipelines.evaluate.predict import Evaluator
from pipelines.evaluate.protocol import load_protocol
from pipelines.evaluate.rows import RunInfo
from pipelines.evaluate.shards import read_shard

FP_REFCOCO_SPLIT_QUERIES = 21_700
"""True and false-premise queries of an FP-RefCOCO val split (the issue's figure)."""


def queries_per_second(model, tokenizer, samples, *, mode: str, protocol: str, device: str,
                       max_new_tokens: int) -> tuple[float, int]:
    """(queries/s, queries) of scoring `samples` in `mode` under `protocol` (the first sample warms up)."""
    evaluator = Evaluator(model, tokenizer, run=RunInfo(run_id="bench", checkpoint="random"), device=device,
                          mode_of=lambda _dataset: mode, max_new_tokens=max_new_tokens,
                          protocol=load_protocol(protocol))
    evaluator.score(samples[0], "warm-up")
    if device == "cuda":
        torch.cuda.synchronize()
    began, queries = time.perf_counter(), 0
    for sample in samples[1:]:
        rows = evaluator.score(sample, "bench")
        if any(row["error"] for row in rows):
            raise RuntimeError([row["error"] for row in rows if row["error"]])
        queries += len(rows)
    if device == "cuda":
        torch.cuda.synchronize()
    return queries / max(time.perf_counter() - began, 1e-9), queries


def measure(cfg: ReadModelConfig, *, device: str, images: int, max_new_tokens: int, root: Path | None = None
            ) -> dict[str, float]:
    """queries/s per mode: teacher_forced, generate_single (protocol=read), generate_batched (protocol=clean)."""
    root = root or synthetic_shards(640, 480, images)
    samples = [s for url in sorted((root / "refcoco_fp-train").glob("shard-*.tar")) for s in read_shard(str(url))]
    samples = samples[: images + 1]
    model, tokenizer = build_read(cfg, device=device)
    model.eval()
    figures = {}
    for name, mode, protocol in (("teacher_forced", TEACHER_FORCED, "clean"), ("generate_single", GENERATE, "read"),
                                 ("generate_batched", GENERATE, "clean")):
        rate, n = queries_per_second(model, tokenizer, samples, mode=mode, protocol=protocol, device=device,
                                     max_new_tokens=max_new_tokens)
        figures[name] = rate
        figures[f"{name}_queries"] = n
    return figures


def run(quick: bool, overrides: list[str] | None = None) -> list[dict]:
    if not torch.cuda.is_available():
        print("[bench.real_size_eval] no CUDA device: skipped (run it on a GPU machine)", flush=True)
        return []
    argv = ["preset=read-7b", "dtype=bfloat16", *[o.removeprefix("model.") for o in overrides or []]]
    cfg = load_config(ReadModelConfig, argv)
    figures = measure(cfg, device="cuda", images=4 if quick else 16, max_new_tokens=16)
    label = f"{cfg.preset}, {torch.cuda.get_device_name(0)}"
    rows = []
    for name in ("teacher_forced", "generate_single", "generate_batched"):
        hours = FP_REFCOCO_SPLIT_QUERIES / figures[name] / 3600
        print(f"[bench.real_size_eval] {label}: {name} {figures[name]:.2f} queries/s "
              f"({figures[name + '_queries']} queries) -> {hours:.2f} h for {FP_REFCOCO_SPLIT_QUERIES:,} queries",
              flush=True)
        rows.append({"bench": "real_size_eval", "metric": f"{name} queries/s ({label})", "value": figures[name],
                     "unit": "queries/s", "goal": ">= 18" if name == "generate_batched" else ""})
    return rows


if __name__ == "__main__":
    args = sys.argv[1:]
    run(quick="--quick" in args, overrides=[a for a in args if not a.startswith("--")])
