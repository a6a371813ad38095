"""demo.jobs.pretrain_vision on a real local Ray cluster: outputs on disk, metrics through pandas, and READ built with
model.tiny.vision_checkpoint carries exactly the pretrained tower."""

from __future__ import annotations

import pathlib

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from demo.jobs import pretrain_vision
from demo.vision import VisionPretrainConfig
from jobs._config import load_config
from model.build import build_read
from model.config import ReadModelConfig, TinyConfig

ARGS = ["steps=6", "eval_every=3", "eval_scenes=8", "batch_size=4", "image_size=[48,48]", "num_cpus=1", "seed=3",
        "model.tiny.clip_num_layers=3"]  # a tower deeper than the preset's: READ must be built with the same override


@pytest.fixture(scope="module")
def job_out(local_ray, tmp_path_factory) -> tuple[pathlib.Path, list[dict]]:
    out = tmp_path_factory.mktemp("vision") / "vision"
    return out, pretrain_vision.main([*ARGS, f"out={out}"])


def test_job_writes_weights_metrics_and_config(job_out):
    out, rows = job_out
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert list(metrics["step"]) == [3, 6] == [r["step"] for r in rows]
    for group in ("patch", "colour", "shape", "object_shape"):
        assert metrics[f"acc_{group}"].between(0, 1).all() and metrics[f"majority_{group}"].between(0, 1).all()
    cfg = load_config(VisionPretrainConfig, ["--config", str(out / "config.yaml")])
    assert cfg.steps == 6 and cfg.seed == 3 and cfg.out == str(out) and cfg.model.tiny.clip_num_layers == 3


def test_read_built_with_the_checkpoint_has_the_pretrained_tower(job_out):
    out, _ = job_out
    weights = out / pretrain_vision.WEIGHTS
    saved = load_file(str(weights))
    model, _ = build_read(ReadModelConfig(tiny=TinyConfig(clip_num_layers=3, vision_checkpoint=str(weights))))
    fresh, _ = build_read(ReadModelConfig(tiny=TinyConfig(clip_num_layers=3)))
    assert model.llava.model.vision_tower.config.num_hidden_layers == 3
    tower = model.llava.model.vision_tower.state_dict()
    assert set(tower) == set(saved)
    for name, tensor in tower.items():
        torch.testing.assert_close(tensor, saved[name], msg=name)
    assert any(not torch.equal(t, fresh.llava.model.vision_tower.state_dict()[k]) for k, t in tower.items())


def test_a_real_preset_is_refused_before_any_work(tmp_path):
    with pytest.raises(SystemExit, match="tiny preset only"):
        pretrain_vision.main([f"out={tmp_path / 'v'}", "model.preset=read-7b"])
    assert not (tmp_path / "v").exists()
