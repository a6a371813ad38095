"""TrainConfig: READ's recipe as defaults, the derived DeepSpeed JSON, validation naming keys, the shipped recipes."""

from __future__ import annotations

import pathlib

import pytest

from jobs._config import load_config
from pipelines.data.config import DataConfig, StreamConfig
from pipelines.train.config import TrainConfig

CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "configs"


def make(**kw) -> TrainConfig:
    return TrainConfig(name="run", **kw)


def test_defaults_derive_reads_deepspeed_recipe_on_cpu():
    ds = make(data=DataConfig(batch_size=3), epochs=4, steps_per_epoch=50).to_deepspeed_dict()
    assert ds["zero_optimization"] == {"stage": 2}
    assert ds["train_micro_batch_size_per_gpu"] == 3 and ds["gradient_accumulation_steps"] == 10
    assert ds["gradient_clipping"] == 1.0
    assert ds["bf16"] == {"enabled": False} and ds["fp16"] == {"enabled": False}
    opt = ds["optimizer"]
    assert opt["type"] == "AdamW"
    assert opt["params"] == {"lr": 3e-4, "betas": [0.9, 0.95], "weight_decay": 0.0, "torch_adam": True,
                             "adam_w_mode": True}
    sched = ds["scheduler"]
    assert sched["type"] == "WarmupDecayLR"
    assert sched["params"] == {"total_num_steps": 200, "warmup_min_lr": 0.0, "warmup_max_lr": 3e-4,
                               "warmup_num_steps": 100, "warmup_type": "linear"}


def test_gpu_trains_in_bf16_with_fused_adam_and_cpu_can_opt_into_bf16():
    gpu = make(use_gpu=True).to_deepspeed_dict()
    assert gpu["bf16"]["enabled"] and gpu["optimizer"]["params"]["torch_adam"] is False
    cpu_bf16 = make(precision="bf16").to_deepspeed_dict()
    assert cpu_bf16["bf16"]["enabled"] and cpu_bf16["optimizer"]["params"]["torch_adam"] is True
    assert not make(use_gpu=True, precision="fp32").to_deepspeed_dict()["bf16"]["enabled"]


def test_step_budget_run_dir_and_micro_batch():
    cfg = make(epochs=2, steps_per_epoch=30, max_steps=7, warmup_num_steps=10, storage_path="s3://bkt/runs",
               data=DataConfig(batch_size=5))
    assert (cfg.total_steps, cfg.last_step) == (60, 7)
    assert make(epochs=2, steps_per_epoch=30, warmup_num_steps=10).last_step == 60
    assert cfg.run_dir == "s3://bkt/runs/run"
    assert cfg.micro_batch_size_per_gpu == 5


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        ({"zero_stage": 3}, "zero_stage"),
        ({"precision": "fp16"}, "precision"),
        ({"num_workers": 0}, "num_workers"),
        ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps"),
        ({"checkpoint_every": 0}, "checkpoint_every"),
        ({"max_failures": -1}, "max_failures"),
        ({"betas": [0.9]}, "betas"),
        ({"lr": 0.0}, "lr"),
        ({"warmup_num_steps": 6000}, "warmup_num_steps"),
        ({"torch_adam": False}, "torch_adam"),
        ({"task": "no-colon"}, "task"),
        ({"required": ["model.llava_path"]}, "model.llava_path"),
        ({"required": ["model.nope"]}, "model.nope"),
    ],
)
def test_bad_values_raise_naming_the_key(kw, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        make(**kw)


def test_name_is_required_by_the_job_loader(tmp_path):
    with pytest.raises(SystemExit, match="name"):
        load_config(TrainConfig, [f"storage_path={tmp_path}"])


@pytest.mark.parametrize(
    ("recipe", "classes", "rates"),
    [
        ("train_read7b_reasonseg.yaml", 3, {"sem_seg": 10, "refer_seg": 1, "correct_refer_seg": 1, "vqa": 1,
                                            "neg_refer_seg": 1, "reason_seg": 10}),
        ("train_read7b_referseg.yaml", 1, {"refer_seg": 12, "correct_refer_seg": 2, "vqa": 2, "neg_refer_seg": 1}),
    ],
)
def test_read7b_recipes_hold_the_papers_hyper_parameters(recipe, classes, rates):
    cfg = load_config(TrainConfig, ["--config", str(CONFIGS / recipe), "model.llava_path=/w/llava",
                                    "model.sam_checkpoint=/w/sam.pth", "shards_root=s3://bkt/shards"])
    assert cfg.model.preset == "read-7b" and cfg.trainable.policy == "read"
    assert (cfg.trainable.lora_r, cfg.trainable.lora_alpha, cfg.trainable.lora_dropout) == (8, 16, 0.05)
    assert cfg.trainable.lora_target_modules == ["q_proj", "v_proj"]
    assert {s.name: s.rate for s in cfg.data.streams} == rates
    assert all(s.shards.startswith("s3://bkt/shards/") for s in cfg.data.streams)
    assert cfg.data.num_classes_per_sample == classes
    ds = cfg.to_deepspeed_dict()
    assert ds["bf16"]["enabled"] and ds["zero_optimization"]["stage"] == 2
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"]) == (2, 10)
    assert ds["optimizer"]["params"]["lr"] == 3e-4 and ds["scheduler"]["params"]["total_num_steps"] == 5000
    with pytest.raises(SystemExit, match="model.llava_path"):
        load_config(TrainConfig, ["--config", str(CONFIGS / recipe)])


def test_tiny_recipe_is_the_cpu_demo():
    cfg = load_config(TrainConfig, ["--config", str(CONFIGS / "train_tiny.yaml"), "shards_root=/data/shards"])
    assert (cfg.model.preset, cfg.trainable.policy, cfg.num_workers, cfg.use_gpu) == ("tiny", "full", 2, False)
    assert cfg.zero_stage == 2 and not cfg.bf16
    assert all(s.shards.startswith("/data/shards/") for s in cfg.data.streams)
    assert {s.name for s in cfg.data.streams} == {"refer_seg", "correct_refer_seg", "vqa", "neg_refer_seg"}


def test_local_paths_become_absolute_for_workers(monkeypatch, tmp_path):
    from pipelines.train.preflight import absolute_local_paths

    monkeypatch.chdir(tmp_path)
    cfg = make(storage_path="runs", data=DataConfig(streams=[StreamConfig(name="a", shards="s/a-*.tar::s3://b/x.tar")]))
    absolute_local_paths(cfg)
    assert cfg.storage_path == str(tmp_path / "runs")
    assert cfg.data.streams[0].shards == f"{tmp_path}/s/a-*.tar::s3://b/x.tar"
    cfg.model.tiny.vision_checkpoint, cfg.model.sam_checkpoint = "v/tower.safetensors", "s3://w/sam.pth"
    absolute_local_paths(cfg)
    assert cfg.model.tiny.vision_checkpoint == str(tmp_path / "v" / "tower.safetensors")
    assert cfg.model.sam_checkpoint == "s3://w/sam.pth" and cfg.model.llava_path == ""
