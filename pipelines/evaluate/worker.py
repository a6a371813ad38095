"""One evaluation worker: loads the model once, scores whole shards, writes one part file per shard.

A plain class, so it runs in-process in tests and as a Ray actor (`ray.remote(EvalWorker)`) in the job.
"""

from __future__ import annotations

import dataclasses
import io
import time
from typing import Any

import pyarrow.parquet as pq
import torch

from model.build import build_read, load_export
from model.export import CONFIG_FILE, is_export_dir
from model.read_release import is_read_release_dir
from pipelines.evaluate.config import EvaluateConfig, export_model_defaults
from pipelines.evaluate.predict import Evaluator
from pipelines.evaluate.protocol import load_protocol
from pipelines.evaluate.rows import RunInfo
from pipelines.evaluate.shards import read_shard
from pipelines.evaluate.tables import rows_to_table, write_part


def exported_preset(checkpoint: str) -> str:
    """The model preset an export folder was saved with (reads its config only, no weights).

    Raises ValueError when `checkpoint` is not an export folder.
    """
    if not is_export_dir(checkpoint):
        raise ValueError(
            f"checkpoint={checkpoint!r} is not a READ export folder (no {CONFIG_FILE}); pass a folder written by "
            "jobs.train's export, or checkpoint='' with model.read_checkpoint=<released checkpoint>"
        )
    return str(export_model_defaults(checkpoint).get("preset", "?"))


def check_checkpoint(cfg: EvaluateConfig) -> None:
    """Raise ValueError when `checkpoint` is set but is neither a release folder nor an export of `model.preset`."""
    if not cfg.checkpoint or is_read_release_dir(cfg.checkpoint):
        return
    preset = exported_preset(cfg.checkpoint)
    if preset != cfg.model.preset:
        raise ValueError(
            f"checkpoint={cfg.checkpoint} was exported with model.preset={preset!r} but this evaluation uses "
            f"model.preset={cfg.model.preset!r}; pass model.preset={preset}"
        )


def load_model(cfg: EvaluateConfig, *, device: str = "cpu") -> tuple[Any, Any]:
    """(READ, tokenizer) for `cfg`: our export when `checkpoint` is set (its preset must equal model.preset; the
    runtime settings such as SasP come from `cfg.model`), else `build_read(cfg.model)`."""
    if not cfg.checkpoint:
        return build_read(cfg.model, device=device)
    check_checkpoint(cfg)
    if is_read_release_dir(cfg.checkpoint):
        return build_read(dataclasses.replace(cfg.model, read_checkpoint=cfg.checkpoint), device=device)
    model, tokenizer, _ = load_export(cfg.checkpoint, device=device, runtime_cfg=cfg.model)
    return model, tokenizer


class EvalWorker:
    """Holds one model; `score_shard` scores every query of a shard and writes its part atomically.

    Args:
        cfg: the evaluation config.
        worker: this worker's index (names its part files).
        run_id: the resolved run id written into every row.
    """

    def __init__(self, cfg: EvaluateConfig, *, worker: int, run_id: str) -> None:
        torch.set_num_threads(max(1, int(cfg.cpus_per_worker)))
        torch.manual_seed(cfg.seed)
        device = "cuda" if cfg.use_gpu else "cpu"
        model, tokenizer = load_model(cfg, device=device)
        protocol = load_protocol(cfg.protocol)
        self.cfg, self.worker = cfg, worker
        self.evaluator = Evaluator(
            model,
            tokenizer,
            run=RunInfo(run_id=run_id, checkpoint=cfg.checkpoint_label()),
            mode_of=cfg.mode_of,
            max_new_tokens=cfg.resolved_max_new_tokens(protocol.max_new_tokens),
            protocol=protocol,
            max_queries_per_forward=cfg.max_queries_per_forward,
            device=device,
            prompt_format=cfg.prompt_format,
        )
        # Arrow/Parquet initialise lazily (~0.4 s on first use); pay that once here, not inside the first part write.
        pq.write_table(rows_to_table([]), io.BytesIO())

    def ready(self) -> int:
        """Returns this worker's index once its model is loaded (the driver waits on it before dispatching)."""
        return self.worker

    def score_shard(self, index: int, url: str) -> dict[str, Any]:
        """Score shard `url` (index `index` in the data selection) and write its part.

        Returns:
            {"index", "url", "worker", "rows", "errors", "score_s", "write_s"}.
        """
        started = time.perf_counter()
        rows: list[dict[str, Any]] = []
        for item in read_shard(url):
            rows += self.evaluator.score(item, url)
        scored = time.perf_counter()
        write_part(self.cfg.out, self.worker, index, url, rows)
        return {
            "index": index,
            "url": url,
            "worker": self.worker,
            "rows": len(rows),
            "errors": sum(1 for r in rows if r["error"]),
            "score_s": scored - started,
            "write_s": time.perf_counter() - scored,
        }
