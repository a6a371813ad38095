"""The prediction driver: one request in-process, or a JSON-lines file of requests on Ray actors (resumable).

Every request's files are written by whoever ran it (`pipelines.predict.outputs`); requests whose part exists in
`out/parts` are skipped, so a killed run re-run with the same `out` does only what is missing. A run into an `out`
made with other settings is refused (`out/fingerprint.json`).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import pyarrow as pa
import ray
import torch

from pipelines import storage
from pipelines.evaluate.driver import score_pending
from pipelines.predict.config import PredictConfig
from pipelines.predict.outputs import collect, done_request_ids, write_prediction
from pipelines.predict.predictor import Predictor, load_predict_model
from pipelines.predict.requests import PredictRequest, requests_of

FINGERPRINT_FILE = "fingerprint.json"


class PredictWorker:
    """Holds one model; `run_batch` predicts a list of requests and writes their files. A plain class, so it runs
    in-process and as a Ray actor."""

    def __init__(self, cfg: PredictConfig) -> None:
        if cfg.inputs:  # a Ray actor holding cpus_per_worker CPUs; a single request keeps the process's threads
            torch.set_num_threads(max(1, int(cfg.cpus_per_worker)))
        torch.manual_seed(cfg.seed)
        device = "cuda" if cfg.use_gpu else "cpu"
        model, tokenizer = load_predict_model(cfg, device=device)
        self.cfg = cfg
        self.predictor = Predictor(model, tokenizer, max_new_tokens=cfg.max_new_tokens, device=device,
                                   prompt_format=cfg.prompt_format)

    def ready(self) -> bool:
        return True

    def run_batch(self, index: int, requests: list[PredictRequest]) -> dict[str, Any]:
        predictions = self.predictor.predict_group(requests, pad_generation=self.cfg.protocol == "read")
        rows = [write_prediction(self.cfg.out, p, checkpoint=self.checkpoint_label(), keep_trace=self.cfg.trace)
                for p in predictions]
        return {"index": index, "rows": len(rows), "errors": sum(1 for r in rows if r["error"])}

    def checkpoint_label(self) -> str:
        return self.cfg.checkpoint or self.cfg.model.read_checkpoint or f"preset:{self.cfg.model.preset}"


def _fingerprint(cfg: PredictConfig) -> dict[str, Any]:
    keep = ("checkpoint", "model", "prompt_format", "max_new_tokens", "seed", "protocol")
    return {k: v for k, v in asdict(cfg).items() if k in keep}


def _claim_out(cfg: PredictConfig) -> None:
    path = storage.join(cfg.out, FINGERPRINT_FILE)
    mine = _fingerprint(cfg)
    if storage.exists(path):
        theirs = json.loads(storage.read_bytes(path))
        if theirs != mine:
            changed = sorted(k for k in mine if theirs.get(k) != mine[k])
            raise ValueError(f"out={cfg.out} holds predictions made with other settings ({changed}); pass a new out "
                             "or delete it")
    else:
        storage.atomic_write_bytes(path, json.dumps(mine, indent=1, sort_keys=True).encode())


def _batches(requests: list[PredictRequest], size: int, *, by_image: bool) -> list[list[PredictRequest]]:
    """Consecutive batches of `size` requests; `by_image`: one batch per image (its requests padded together)."""
    if not by_image:
        return [requests[i : i + size] for i in range(0, len(requests), size)]
    groups: dict[str, list[PredictRequest]] = {}
    for r in requests:
        groups.setdefault(r.image, []).append(r)
    return list(groups.values())


def predict(cfg: PredictConfig, *, config_yaml: str = "", batch_size: int = 8) -> pa.Table:
    """Run every request of `cfg`; returns the predictions table (also written to out/predictions.parquet).
    Single requests run in this process; `inputs` files run on `cfg.num_workers` Ray actors (Ray initialised)."""
    requests = requests_of(cfg)
    storage.makedirs(cfg.out)
    _claim_out(cfg)
    if config_yaml:
        storage.atomic_write_bytes(storage.join(cfg.out, "config.yaml"), config_yaml.encode())
    done = done_request_ids(cfg.out)
    pending = [r for r in requests if r.request_id not in done]
    if cfg.protocol == "read":  # an image's requests are padded together: redo all of an image with one missing
        images = {r.image for r in pending}
        pending = [r for r in requests if r.image in images]
    if pending and not cfg.inputs:
        PredictWorker(cfg).run_batch(0, pending)
    elif pending:
        batches = _batches(pending, batch_size, by_image=cfg.protocol == "read")
        actor_cls = ray.remote(PredictWorker).options(num_cpus=cfg.cpus_per_worker, num_gpus=1 if cfg.use_gpu else 0)
        actors = [actor_cls.remote(cfg) for _ in range(min(cfg.num_workers, len(batches)))]
        try:
            ray.get([a.ready.remote() for a in actors])
            score_pending(actors, list(enumerate(batches)), method="run_batch")
        finally:
            for actor in actors:
                ray.kill(actor)
    return collect(cfg.out, [r.request_id for r in requests])
