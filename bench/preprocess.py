"""Preprocessing throughput: the Ray job (1 and 2 workers) vs a plain single-process loop, and worker memory.

Data: a synthetic RefCOCO-format train split (pipelines.synth, 640x480 JPEGs, ~3 queries per image), written once
under bench/out/ and reused. The baseline does exactly the same per-sample work (read + decode the image, decode
the masks with pycocotools, schemas.sample.encode) and writes tars with the stdlib `tarfile`, with no framework.
The job side is `pipelines.shards.preprocess_source` on a Ray cluster started beforehand (cluster start-up is
reported on its own: it is paid once per cluster, not per dataset).

Peak RSS per worker is the high-water mark (ru_maxrss) of the Ray worker processes. It is measured after a run on a
quarter of the data and again after the full run: equal figures mean memory does not grow with the dataset.

    python -m bench.preprocess [--quick]
"""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
import time
from pathlib import Path

from pipelines.shards import RunStats, preprocess_source
from pipelines.sources import open_source
from pipelines.synth import SynthConfig, write_all
from schemas.sample import encode

OUT = Path(__file__).resolve().parent / "out" / "preprocess"
SHARD_MAX_SAMPLES = 100


def _dataset(num_images: int) -> Path:
    """Write (once) a 640x480 RefCOCO-format tree with `num_images` train images; returns its root."""
    root = OUT / f"raw_{num_images}"
    if not (root / "synth_summary.json").exists():
        shutil.rmtree(root, ignore_errors=True)
        write_all(SynthConfig(out=str(root), seed=0, image_size=[640, 480], datasets=["refcoco"],
                              num_refcoco_train=num_images, num_refcoco_val=0, num_refcoco_testA=0,
                              num_refcoco_testB=0, max_refs_per_image=2, max_sents_per_ref=2))
    return root


def _baseline(root: Path, out: Path) -> tuple[float, int, int]:
    """Plain loop: same reading/decoding/encoding, stdlib tarfile. Returns (seconds, images, bytes written)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    source = open_source("refcoco", str(root), "train")
    units, _ = source.index()
    images = 0
    tar = None
    for i, unit in enumerate(units):
        if i % SHARD_MAX_SAMPLES == 0:
            if tar is not None:
                tar.close()
            tar = tarfile.open(out / f"shard-{i // SHARD_MAX_SAMPLES:06d}.tar", "w")
        result = source.load(unit)
        if result.sample is None:
            continue
        for suffix, data in encode(result.sample).items():
            if suffix.startswith("__"):
                continue
            info = tarfile.TarInfo(f"{unit.key}.{suffix}")
            info.size = len(data)
            tar.addfile(info, _Reader(data))
        images += 1
    if tar is not None:
        tar.close()
    seconds = time.perf_counter() - t0
    return seconds, images, sum(p.stat().st_size for p in out.glob("*.tar"))


class _Reader:
    """Minimal file object over bytes for tarfile.addfile (what io.BytesIO would do)."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else self._pos + n
        chunk, self._pos = self._data[self._pos:end], min(end, len(self._data))
        return chunk


def _job(root: Path, out: Path, num_workers: int) -> tuple[float, int, int, int]:
    """The job's work on the running cluster. Returns (seconds, images, bytes, peak worker RSS bytes)."""
    shutil.rmtree(out, ignore_errors=True)
    source = open_source("refcoco", str(root), "train")
    stats = RunStats()
    summary = preprocess_source(source, str(out), shard_max_samples=SHARD_MAX_SAMPLES, shard_max_bytes=1 << 30,
                                num_workers=num_workers, progress=lambda line: None, stats=stats)
    return stats.seconds, summary.samples, sum(r.bytes for r in summary.records), stats.peak_rss_bytes


def run(quick: bool) -> list[dict]:
    """Rows {"bench", "metric", "value", "unit", "goal"} for bench/run_all.py."""
    import ray

    num_images = 300 if quick else 2000
    root = _dataset(num_images)
    small = _dataset(num_images // 4)
    rows: list[dict] = []

    def row(metric: str, value: float, unit: str, goal: str = "") -> None:
        rows.append({"bench": "preprocess", "metric": metric, "value": float(value), "unit": unit, "goal": goal})
        print(f"[bench.preprocess] {metric}: {value:.4g} {unit} {goal}", flush=True)

    row("images", num_images, "images")
    _baseline(small, OUT / "baseline_warmup")  # imports, pycocotools and allocator warm-up, like the job's warm-up run
    t_base, n_base, b_base = _baseline(root, OUT / "baseline")
    row("baseline images/s", n_base / t_base, "img/s")
    row("baseline MB/s", b_base / t_base / 1e6, "MB/s")

    t0 = time.perf_counter()
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    row("ray cluster start", time.perf_counter() - t0, "s", "paid once per cluster")
    try:
        _, _, _, rss_small = _job(small, OUT / "job_small", 2)  # also warms up both workers
        results = {}
        for workers in (1, 2):
            seconds, images, nbytes, rss = _job(root, OUT / f"job_{workers}", workers)
            if images != n_base:
                raise AssertionError(f"job wrote {images} images, baseline {n_base}")
            results[workers] = seconds
            row(f"job {workers} worker images/s", images / seconds, "img/s")
            row(f"job {workers} worker MB/s", nbytes / seconds / 1e6, "MB/s")
            row(f"job {workers} worker / baseline", t_base / seconds, "x", ">= 0.9" if workers == 1 else ">= 1.7")
        row("peak RSS per worker", rss / 2**20, "MiB", "< 1024")
        row(f"peak RSS per worker after {num_images // 4} images", rss_small / 2**20, "MiB", "same as full size")
        same = (OUT / "job_1").glob("*.tar")
        identical = all((OUT / "job_2" / p.name).read_bytes() == p.read_bytes() for p in same)
        row("1 vs 2 workers byte-identical", 1.0 if identical else 0.0, "bool", "1")
    finally:
        if started:
            ray.shutdown()
        for name in ("baseline_warmup", "baseline", "job_small", "job_1", "job_2"):  # keep only the raw-data cache
            shutil.rmtree(OUT / name, ignore_errors=True)
    row("cpus", os.cpu_count() or 0, "cores", "shared machine: ratios are noisy")
    return rows


if __name__ == "__main__":
    run(quick="--quick" in sys.argv[1:])
