"""Pretrain the tiny preset's vision tower on fresh synthetic scenes, as one Ray task.

    python -m demo.jobs.pretrain_vision out=runs/vision [steps=6000] \
        [model.tiny.clip_num_layers=4 model.tiny.clip_hidden_size=128] [ray_address=auto]

Writes vision_tower.safetensors (load it with model.tiny.vision_checkpoint=... and the same model.clip_* overrides),
metrics.parquet (held-out accuracy of the patch labels, beside the majority answer) and config.yaml. See
demo/vision/pretrain.py for why.
"""

from __future__ import annotations

import sys

import pyarrow as pa
from safetensors.torch import save

from demo.vision import VisionPretrainConfig, pretrain_vision
from jobs._config import config_yaml, load_config
from jobs._ray import run_one_task
from pipelines import storage

WEIGHTS = "vision_tower.safetensors"


def _report(row: dict) -> None:
    groups = [k.removeprefix("acc_") for k in row if k.startswith("acc_")]
    print(f"[pretrain_vision] step {row['step']} {row['seconds']:.0f}s loss {row['loss']:.3f} " + " ".join(
        f"{g} {100 * row[f'acc_{g}']:.1f}% (majority {100 * row[f'majority_{g}']:.1f}%)" for g in groups), flush=True)


def _pretrain(cfg: VisionPretrainConfig) -> tuple[bytes, list[dict]]:
    state, rows = pretrain_vision(cfg, log=_report)
    return save(state, metadata={"format": "pt"}), rows


def main(argv: list[str] | None = None) -> list[dict]:
    cfg = load_config(VisionPretrainConfig, sys.argv[1:] if argv is None else argv)
    storage.makedirs(cfg.out)
    storage.atomic_write_bytes(storage.join(cfg.out, "config.yaml"), config_yaml(cfg).encode())
    weights, rows = run_one_task(_pretrain, cfg, address=cfg.ray_address, num_cpus=cfg.num_cpus)
    storage.atomic_write_parquet(storage.join(cfg.out, "metrics.parquet"), pa.Table.from_pylist(rows))
    storage.atomic_write_bytes(storage.join(cfg.out, WEIGHTS), weights)  # last: its presence means complete
    print(f"[pretrain_vision] wrote {storage.join(cfg.out, WEIGHTS)}; use model.tiny.vision_checkpoint=<that path>")
    return rows


if __name__ == "__main__":
    main()
