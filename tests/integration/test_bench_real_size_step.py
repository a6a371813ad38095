"""bench/real_size_step.py's measurement, run on CPU with the tiny preset so the GPU benchmark cannot rot unseen:
the READ-7B ReferSeg recipe's config with random weights, a real DeepSpeed engine (gloo, one rank) and the real shard
loader, through the same `optimizer_step` that jobs.train's workers call."""

from __future__ import annotations

import math
import pathlib

import pytest
import torch

from bench.real_size_step import measure, recipe_config


def test_the_recipe_keeps_its_hyper_parameters_with_random_weights(train_shards_root: pathlib.Path):
    cfg = recipe_config(train_shards_root, [])
    ds = cfg.to_deepspeed_dict()
    assert cfg.model.preset == "read-7b" and not cfg.model.llava_path and not cfg.model.sam_checkpoint
    assert ds["zero_optimization"]["stage"] == 2 and ds["gradient_accumulation_steps"] == 10
    assert ds["train_micro_batch_size_per_gpu"] == 2 and ds["optimizer"]["params"]["lr"] == 3e-4
    assert {s.name: s.rate for s in cfg.data.streams} == {"refer_seg": 12.0, "correct_refer_seg": 2.0, "vqa": 2.0,
                                                          "neg_refer_seg": 1.0}
    assert all(len(urls) > 0 for urls in cfg.data.validate_shards().values())


def test_measure_runs_real_updates_through_the_training_step(train_shards_root: pathlib.Path, one_rank_process_group):
    cfg = recipe_config(train_shards_root, ["model.preset=tiny", "model.dtype=float32", "use_gpu=false",
                                            "gradient_accumulation_steps=2", "data.num_workers=0",
                                            "data.shuffle_buffer=4", "model.sasp.num_points=4", "warmup_num_steps=2"])
    figures = measure(cfg, device=torch.device("cpu"), updates=2, loader_batches=3)
    assert 0 < figures["trainable_m"] * 1e6 < figures["params_b"] * 1e9
    assert figures["update_s"] > 0 and math.isfinite(figures["update_s"])
    images_per_update = cfg.data.batch_size * cfg.gradient_accumulation_steps
    assert figures["images_per_s"] == pytest.approx(images_per_update / figures["update_s"])
    assert figures["loader_images_per_s"] > 0 and figures["peak_gib"] == 0.0
    assert figures["update_tflop"] > 0 and math.isnan(figures["mfu"])  # no GPU kind on CPU
