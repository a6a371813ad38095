"""The evaluation driver: checks the inputs, fans shards out to Ray actors, then commits the result tables.

Each actor pulls the next shard of the data selection when it is free (see `score_pending`) and writes one part
per shard. Parts already in `out/parts` (same fingerprint) are reused, so a killed
run re-run with the same `out` scores only what is missing. Ray must already be initialised (jobs/_ray.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import ray

from pipelines.evaluate.config import EvaluateConfig, checkpoint_hash
from pipelines.evaluate.protocol import load_protocol
from pipelines.evaluate.shards import check_schema_version, list_shards
from pipelines.evaluate.tables import commit, finished_parts, prepare_parts, shard_id, warm_up
from pipelines.evaluate.worker import EvalWorker, check_checkpoint


@dataclass(kw_only=True)
class EvalReport:
    """What one `evaluate` call did.

    Attributes:
        summary: the committed summary table.
        shard_stats: one dict per shard scored by this call (see EvalWorker.score_shard).
        num_shards: shards in the data selection; num_reused: of them, taken from finished parts.
        start_s: wall time to start the actors and load their models (paid once per job);
        score_s: wall time of the scoring phase (all actors ready to last part written); commit_s: of the commit.
    """

    summary: pd.DataFrame
    shard_stats: list[dict[str, Any]] = field(default_factory=list)
    num_shards: int = 0
    num_reused: int = 0
    start_s: float = 0.0
    score_s: float = 0.0
    commit_s: float = 0.0

    @property
    def num_scored_queries(self) -> int:
        return sum(s["rows"] for s in self.shard_stats)


def score_pending(actors: list[Any], pending: list[tuple[int, Any]], *, method: str = "score_shard"
                  ) -> list[dict[str, Any]]:
    """Score the (index, url) shards of `pending` on `actors`, each actor pulling the next shard when it is free
    (`actor.<method>.remote(index, item)`; jobs.predict hands out request batches the same way).

    Pull-based dispatch keeps workers busy to the end when shards differ in cost (generation-mode shards are
    slower than teacher-forced ones); which worker scores a shard never changes the committed tables, because
    parts are keyed by shard and the commit sorts rows. Returns the per-shard stats in selection order.
    """
    queue = list(reversed(pending))
    running: dict[Any, Any] = {}

    def give_next(actor: Any) -> None:
        if queue:
            index, item = queue.pop()
            running[getattr(actor, method).remote(index, item)] = actor

    for actor in actors:
        give_next(actor)
    stats: list[dict[str, Any]] = []
    while running:
        [ref], _ = ray.wait(list(running), num_returns=1)
        actor = running.pop(ref)
        stats.append(ray.get(ref))
        give_next(actor)
    return sorted(stats, key=lambda s: s["index"])


def evaluate(cfg: EvaluateConfig, *, config_yaml: str) -> EvalReport:
    """Score every query of the data selection exactly once and commit queries/, summary.parquet, config.yaml.

    Raises ValueError for an empty data selection, shards of an unknown schema version, or a checkpoint whose
    preset differs from model.preset.
    """
    urls = list_shards(cfg.data)
    for url in urls:
        check_schema_version(url)
    check_checkpoint(cfg)
    load_protocol(cfg.protocol)  # an unknown protocol stops here, before any actor starts
    run_id = cfg.resolved_run_id(urls)
    prepare_parts(cfg.out, cfg.fingerprint(urls))
    done = finished_parts(cfg.out)
    pending = [(i, u) for i, u in enumerate(urls) if shard_id(i, u) not in done]
    launched = started = time.perf_counter()
    stats: list[dict[str, Any]] = []
    if pending:
        num_workers = min(cfg.num_workers, len(pending))
        actor_cls = ray.remote(EvalWorker).options(num_cpus=cfg.cpus_per_worker, num_gpus=1 if cfg.use_gpu else 0)
        actors = [actor_cls.remote(cfg, worker=w, run_id=run_id) for w in range(num_workers)]
        try:
            warm_up()  # overlaps with the actors' model loading
            ray.get([actor.ready.remote() for actor in actors])
            started = time.perf_counter()
            stats = score_pending(actors, pending)
        finally:
            for actor in actors:
                ray.kill(actor)
    scored = time.perf_counter()
    summary = commit(cfg.out, urls, config_yaml=config_yaml, run_id=run_id, checkpoint=cfg.checkpoint_label(),
                     checkpoint_hash=checkpoint_hash(cfg.checkpoint_label()))
    return EvalReport(
        summary=summary,
        shard_stats=stats,
        num_shards=len(urls),
        num_reused=len(urls) - len(pending),
        start_s=started - launched,
        score_s=scored - started,
        commit_s=time.perf_counter() - scored,
    )
