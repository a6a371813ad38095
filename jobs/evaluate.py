"""Evaluate a READ model on shards with N Ray workers and write Parquet result tables.

    python -m jobs.evaluate checkpoint=<export dir or ''> model.preset=tiny data=[<shard dir>,...] out=<dir> \
        num_workers=N
    python -m jobs.evaluate --config <out>/config.yaml out=<new dir> num_workers=2     # reproduces an evaluation

With an export checkpoint, model.preset and the runtime settings (SasP num_points/t_pos/t_neg/down_sample, [SEG]
position, dtype) default to those the export was trained with; model.<key>=... still overrides them.
    ray job submit --working-dir . -- python -m jobs.evaluate ...                      # on a cluster

Writes <out>/queries/ (Parquet, partitioned by dataset and split), <out>/summary.parquet and <out>/config.yaml.
"""

from __future__ import annotations

import sys

from jobs._config import config_yaml, load_config_derived
from jobs._ray import ray_session
from pipelines.evaluate.config import EvaluateConfig, checkpoint_defaults
from pipelines.evaluate.driver import EvalReport, evaluate
from pipelines.results import format_summary


def load_evaluate_config(argv: list[str]) -> EvaluateConfig:
    """The job's config; model.* and prompt_format.* default to what the checkpoint brings (an export's training
    settings and prompt format; READ's numerics for a release folder)."""
    return load_config_derived(EvaluateConfig, argv, lambda cfg: checkpoint_defaults(cfg.checkpoint))


def main(argv: list[str] | None = None) -> EvalReport:
    cfg = load_evaluate_config(sys.argv[1:] if argv is None else argv)
    cfg.make_local_paths_absolute()  # evaluation actors may run in another directory
    with ray_session(cfg.ray_address):
        try:
            report = evaluate(cfg, config_yaml=config_yaml(cfg))
        except ValueError as err:
            raise SystemExit(f"evaluate: {err}") from err
    print(
        f"evaluate: {report.num_shards} shards ({report.num_reused} reused), {report.num_scored_queries} query rows "
        f"workers ready in {report.start_s:.1f}s, scored in {report.score_s:.1f}s, "
        f"committed in {report.commit_s:.2f}s -> {cfg.out}"
    )
    print(format_summary(report.summary))
    return report


if __name__ == "__main__":
    main()
