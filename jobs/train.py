"""Train READ with Ray Train + DeepSpeed from WebDataset shards.

    python -m jobs.train --config configs/train_tiny.yaml [key=value ...]
    ray job submit --working-dir . -- python -m jobs.train --config configs/train_read7b_reasonseg.yaml \
        model.llava_path=... model.sam_checkpoint=... data.datasets.sem_seg.shards=...

Outputs under `<storage_path>/<name>`: config.yaml, metrics.parquet, Ray Train checkpoints, export/.
Re-running the same command (same name and storage_path) resumes from the newest checkpoint.
"""

from __future__ import annotations

import sys

from ray.train import CheckpointConfig, FailureConfig, Result, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from jobs._config import load_config_derived, write_config
from jobs._ray import ray_session
from model.export import saved_prompt_format
from pipelines.train.config import TrainConfig
from pipelines.train.loop import train_loop_per_worker
from pipelines.train.preflight import absolute_local_paths, check_config


def load_train_config(argv: list[str]) -> TrainConfig:
    """The job's config; prompt_format.* defaults to the prompt format of an export in model.read_checkpoint."""
    return load_config_derived(TrainConfig, argv, _export_prompt_format)


def _export_prompt_format(cfg: TrainConfig) -> dict | None:
    saved = saved_prompt_format(cfg.model.read_checkpoint)
    return {"prompt_format": saved} if saved else None


def main(argv: list[str] | None = None) -> Result:
    cfg = load_train_config(sys.argv[1:] if argv is None else argv)
    absolute_local_paths(cfg)  # workers may run in another directory
    try:
        check_config(cfg)  # before any worker starts: shard patterns, dataset mix, model preset
    except ValueError as err:
        raise SystemExit(f"bad configuration: {err}") from err
    write_config(cfg.run_dir, cfg)
    with ray_session(cfg.ray_address):
        trainer = TorchTrainer(
            train_loop_per_worker,
            train_loop_config={"cfg": cfg},
            scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu,
                                         resources_per_worker={"CPU": cfg.cpus_per_worker}),
            torch_config=TorchConfig(backend="nccl" if cfg.use_gpu else "gloo"),
            run_config=RunConfig(
                name=cfg.name,
                storage_path=cfg.storage_path,
                failure_config=FailureConfig(max_failures=cfg.max_failures),
                checkpoint_config=CheckpointConfig(num_to_keep=cfg.num_checkpoints_to_keep),
            ),
        )
        try:
            result = trainer.fit()
        except Exception as err:  # Ray wraps worker errors in TrainingFailedError; say how to resume
            raise SystemExit(f"training run {cfg.run_dir} failed: {err}\nRe-run the same command to resume from "
                             "its newest checkpoint.") from err
    print(f"[train] done: {cfg.run_dir} (metrics.parquet, checkpoints{', export/' if cfg.export else ''})")
    return result


if __name__ == "__main__":
    main()
