"""Training throughput vs loader throughput, per worker: the loader must never be the bottleneck.

* train: `jobs.train` with configs/train_tiny.yaml (tiny READ, full policy, 2 CPU workers, gloo, ZeRO-2) on shards
  preprocessed from a synthetic tree; samples/s is the median over steps (after 3 warm-up steps) of metrics.parquet's
  `samples_per_s` (images/s, all ranks), divided by the number of workers.
* loader: `pipelines.data.stream.build_loader` alone for one rank of the same run (same DataConfig, same DataLoader
  workers, same model input sizes), images/s after one warm-up batch.
* ratio = loader / train per worker; goal >= 2, also for the loader over READ's whole ReasonSeg-recipe mixture
  (configs/train_read7b_reasonseg.yaml's streams: every dataset, READ's premise rates) on synthetic shards.
  In full mode, the loader is also timed at the real presets' input
  sizes (CLIP 336, SAM 1024, 576 image tokens) on 640x480 images: compare it with a GPU run's samples/s per GPU.

    python -m bench.train [--quick]
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq

from jobs._config import load_config
from pipelines.train.config import TrainConfig

OUT = Path(__file__).resolve().parent / "out" / "train"
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "train_tiny.yaml"
FOLDERS = {"refcoco": ("", "refcoco-train"), "fprefcoco": ("", "refcoco_fp-train"),
           "llava_vqa": ("", "llava_vqa-train"), "R-refcoco": ("", "R-refcoco-train")}


def synthetic_shards(width: int, height: int, num_images: int, out: Path = OUT) -> Path:
    """Write (once) a synthetic tree and its shards in the layout configs/train_tiny.yaml reads, under `out`;
    returns shards_root (`<dataset>-train/shard-*.tar` for refcoco, FP-RefCOCO, LLaVA VQA and R-RefCOCO)."""
    from pipelines.shards import preprocess_source
    from pipelines.sources import open_source
    from pipelines.synth import SynthConfig, write_all

    root = out / f"shards_{width}x{height}_{num_images}"
    if (root / "done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    raw = root / "raw"
    write_all(SynthConfig(out=str(raw), seed=0, image_size=[width, height], datasets=list(FOLDERS),
                          num_refcoco_train=num_images, num_refcoco_val=0, num_refcoco_testA=0, num_refcoco_testB=0,
                          num_llava=max(4, num_images // 4)))
    for dataset, (split_by, folder) in FOLDERS.items():
        preprocess_source(open_source(dataset, str(raw), "train", split_by=split_by), str(root / folder),
                          shard_max_samples=16, shard_max_bytes=1 << 28, num_workers=0, progress=lambda line: None)
    (root / "done").touch()
    return root


MIXTURE_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "train_read7b_reasonseg.yaml"
"""The recipe whose whole training mixture (every stream and dataset, READ's premise rates) the loader is timed on."""


def mixture_shards(num_images: int, out: Path = OUT) -> Path:
    """Write (once) synthetic shards of every dataset MIXTURE_CONFIG's streams read, as `<dataset>-train/`, under
    `out`; returns shards_root."""
    from pipelines.shards import preprocess_source
    from pipelines.sources import open_source
    from pipelines.synth import SynthConfig, write_all
    from pipelines.synth.config import DATASETS

    root = out / f"mixture_{num_images}"
    if (root / "done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    raw = root / "raw"
    counts = {f"num_{name}": num_images for name in ("reasonseg_train", "refcoco_train", "refcocog_train",
                                                       "refclef_train", "llava", "ade20k", "cocostuff", "mapillary",
                                                       "pascal_part", "paco_lvis")}
    write_all(SynthConfig(out=str(raw), seed=0, image_size=[160, 120], datasets=list(DATASETS), **counts))
    for dataset in DATASETS:
        preprocess_source(open_source(dataset, str(raw), "train"), str(root / f"{dataset}-train"),
                          shard_max_samples=16, shard_max_bytes=1 << 28, num_workers=0, progress=lambda line: None)
    (root / "done").touch()
    return root


def _train_rate(shards_root: Path, steps: int) -> tuple[float, int, float]:
    """(images/s per worker, workers, wall seconds of the job) of a tiny training run."""
    from jobs.train import main

    name = f"bench-{uuid.uuid4().hex[:8]}"
    runs = OUT / "runs"
    t0 = time.perf_counter()
    main(["--config", str(CONFIG), f"shards_root={shards_root}", f"storage_path={runs}", f"name={name}",
          f"steps_per_epoch={steps}", "epochs=1", f"checkpoint_every={steps}", "warmup_num_steps=2",
          "export=false", "max_failures=0", f"log_every={steps}"])
    wall = time.perf_counter() - t0
    rates = pq.read_table(runs / name / "metrics.parquet").column("samples_per_s").to_pylist()[3:]
    cfg = load_config(TrainConfig, ["--config", str(CONFIG)])
    shutil.rmtree(runs / name, ignore_errors=True)
    return statistics.median(rates) / cfg.num_workers, cfg.num_workers, wall


def _loader_rate(shards_root: Path, num_batches: int, *, real_sizes: bool, mixture: bool = False) -> float:
    """Images/s of rank 0's loader (of the tiny run's world size), with the run's DataLoader workers; `mixture`
    reads MIXTURE_CONFIG's streams and premise rates instead of the tiny run's."""
    from model.build import build_read
    from model.config import ReadModelConfig
    from pipelines.data.stream import ShardReadPolicy, build_loader
    from pipelines.data.transform import ModelInputSpec
    from pipelines.train.preflight import absolute_local_paths

    cfg = load_config(TrainConfig, ["--config", str(CONFIG), f"shards_root={shards_root}"])
    if mixture:
        recipe = load_config(TrainConfig, ["--config", str(MIXTURE_CONFIG), f"shards_root={shards_root}",
                                           "model.llava_path=unused", "model.sam_checkpoint=unused"])
        cfg.data.streams, cfg.data.num_classes_per_sample = recipe.data.streams, recipe.data.num_classes_per_sample
        cfg.data.semseg_premise_weights = recipe.data.semseg_premise_weights
        cfg.data.reasonseg_false_premise_share = recipe.data.reasonseg_false_premise_share
    absolute_local_paths(cfg)
    model, tokenizer = build_read(ReadModelConfig(preset="tiny"))
    spec = ModelInputSpec.from_model(model)
    if real_sizes:
        spec = ModelInputSpec(num_image_tokens=576, clip_image_size=336, sam_image_size=1024)
    loader = build_loader(cfg.data, ShardReadPolicy(seed=0, rank=0, world_size=cfg.num_workers), tokenizer=tokenizer,
                          spec=spec)
    batches = iter(loader)
    next(batches)  # DataLoader worker start-up and shuffle-buffer fill are paid once per stream
    t0, images = time.perf_counter(), 0
    for _ in range(num_batches):
        images += len(next(batches).original_sizes)
    return images / (time.perf_counter() - t0)


def run(quick: bool) -> list[dict]:
    shards_root = synthetic_shards(320, 240, 32 if quick else 96)
    loader = _loader_rate(shards_root, 20 if quick else 80, real_sizes=False)
    train, workers, wall = _train_rate(shards_root, 12 if quick else 40)
    ratio = loader / train
    mixture = _loader_rate(mixture_shards(8 if quick else 32), 20 if quick else 80, real_sizes=False, mixture=True)
    print(f"[bench.train] train {train:.2f} images/s per worker ({workers} CPU workers, job wall {wall:.0f}s); "
          f"loader {loader:.2f} images/s per worker; loader/train = {ratio:.2f} (goal >= 2); READ's full mixture "
          f"loader {mixture:.2f} images/s per worker = {mixture / train:.2f}x train")
    rows = [
        {"bench": "train", "metric": "train samples/s per worker (tiny, CPU)", "value": train, "unit": "images/s",
         "goal": ""},
        {"bench": "train", "metric": "loader samples/s per worker (tiny sizes)", "value": loader, "unit": "images/s",
         "goal": ""},
        {"bench": "train", "metric": "loader / train per worker", "value": ratio, "unit": "x", "goal": ">= 2"},
        {"bench": "train", "metric": "loader / train per worker, READ's full mixture (reasonseg recipe streams)",
         "value": mixture / train, "unit": "x", "goal": ">= 2"},
        {"bench": "train", "metric": "train job wall time", "value": wall, "unit": "s", "goal": ""},
    ]
    if not quick:
        real = _loader_rate(synthetic_shards(640, 480, 48), 20, real_sizes=True)
        print(f"[bench.train] loader at real sizes (CLIP 336, SAM 1024, 640x480 images): {real:.2f} images/s per rank")
        rows.append({"bench": "train", "metric": "loader samples/s per rank (336/1024 sizes)", "value": real,
                     "unit": "images/s", "goal": ">= 2x GPU samples/s per GPU"})
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv[1:]):
        print(row)
