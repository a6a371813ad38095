"""Evaluation benchmark: queries/s with 1 and 2 Ray workers (tiny model, CPU) and the result-writing overhead.

Data: synthetic RefCOCO-style shards (teacher-forced, 2 queries per image) plus one FP-RefCOCO-style shard
(generation mode). Throughput counts the scoring phase only: the driver's wall time from all actors ready to the
last part written (actor start-up and model build, paid once per job, are reported apart).
Writing overhead = (part writes + commit) / (scoring + part writes + commit). Goals: 2 workers >= 1.7x 1 worker;
overhead < 5%. Needs >= 2 free CPU cores to show the speed-up.
Usage: python -m bench.evaluate [--quick]
"""

from __future__ import annotations

import io
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
import webdataset as wds
from PIL import Image

from pipelines.evaluate.config import EvaluateConfig
from pipelines.evaluate.driver import EvalReport, evaluate
from schemas.sample import Query, ShardSample, encode, make_key


def _sample(dataset: str, index: int) -> ShardSample:
    rng = random.Random(f"{dataset}-{index}")
    h, w = rng.randrange(48, 96), rng.randrange(48, 96)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(index).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    queries = []
    for j in range(2):
        mask = np.zeros((h, w), np.uint8)
        y, x = rng.randrange(h // 2), rng.randrange(w // 2)
        mask[y : y + h // 3, x : x + w // 3] = 1
        if dataset.startswith("fp") and j == 1:
            queries.append(Query(query_id=f"{index}:{j}", text="the green box", exists=False, gt_sent="the red box"))
        else:
            queries.append(Query(query_id=f"{index}:{j}", text=f"the red box {j}", mask=mask))
    return ShardSample(key=make_key(dataset, "val", index), dataset=dataset, split="val", image_bytes=buf.getvalue(),
                       image_format="png", height=h, width=w, queries=queries)


def write_data(root: Path, *, num_shards: int, per_shard: int) -> str:
    """`num_shards` refcoco shards and one fprefcoco shard of `per_shard` images each."""
    for s in range(num_shards + 1):
        dataset = "fprefcoco" if s == num_shards else "refcoco"
        path = root / dataset / f"shard-{s:04d}.tar"
        path.parent.mkdir(parents=True, exist_ok=True)
        with wds.TarWriter(str(path)) as sink:
            for j in range(per_shard):
                sink.write(encode(_sample(dataset, s * per_shard + j)))
    return str(root)


def _measure(data: str, out: str, num_workers: int) -> tuple[float, float, float, EvalReport]:
    cfg = EvaluateConfig(data=[data], out=out, num_workers=num_workers, max_new_tokens=8)
    started = time.perf_counter()
    report = evaluate(cfg, config_yaml="bench: true\n")
    total = time.perf_counter() - started
    rows = report.num_scored_queries
    write = sum(s["write_s"] for s in report.shard_stats) + report.commit_s
    work = sum(s["score_s"] + s["write_s"] for s in report.shard_stats) + report.commit_s
    print(f"  {num_workers} worker(s): actor start {report.start_s:.2f} s, scoring {report.score_s:.2f} s, "
          f"part writes {write - report.commit_s:.3f} s, commit {report.commit_s:.3f} s", flush=True)
    return rows / report.score_s, write / work, total, report


def run(quick: bool) -> list[dict]:
    num_shards, per_shard = (6, 6) if quick else (12, 12)
    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = write_data(Path(tmp) / "data", num_shards=num_shards, per_shard=per_shard)
            qps_1, overhead_1, total_1, report = _measure(data, f"{tmp}/w1", 1)
            qps_2, overhead_2, total_2, _ = _measure(data, f"{tmp}/w2", 2)
    finally:
        if started_ray:
            ray.shutdown()
    queries = report.num_scored_queries
    return [
        {"bench": "evaluate", "metric": "queries (tiny model, CPU)", "value": float(queries), "unit": "queries",
         "goal": ""},
        {"bench": "evaluate", "metric": "throughput, 1 worker", "value": qps_1, "unit": "queries/s", "goal": ""},
        {"bench": "evaluate", "metric": "throughput, 2 workers", "value": qps_2, "unit": "queries/s", "goal": ""},
        {"bench": "evaluate", "metric": "speed-up 2 vs 1 workers", "value": qps_2 / qps_1, "unit": "x",
         "goal": ">= 1.7"},
        {"bench": "evaluate", "metric": "result writing overhead", "value": 100 * max(overhead_1, overhead_2),
         "unit": "% of eval time", "goal": "< 5"},
        {"bench": "evaluate", "metric": "job wall incl. actor start, 1 / 2 workers", "value": total_1 / total_2,
         "unit": "x", "goal": ""},
    ]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    for row in run(quick="--quick" in argv):
        print(f"{row['metric']:<45} {row['value']:>10.3f} {row['unit']:<16} {row['goal']}")


if __name__ == "__main__":
    main()
