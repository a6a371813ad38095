"""The prompt format travels with the weights: a training run's `prompt_format.*` is saved beside its export, and
evaluation and prediction of that export default to it (the user's keys still win). Older config keys still load."""

from __future__ import annotations

import json

import pytest

from jobs._config import load_config
from jobs.evaluate import load_evaluate_config
from jobs.predict import load_predict_config
from model.build import build_read
from model.config import ReadModelConfig
from model.export import load_prompt_format
from model.prompt_format import PROMPT_FORMAT_FILE, PromptFormat
from pipelines.train.config import TrainConfig
from pipelines.train.task import ReadTask


@pytest.fixture(scope="module")
def echo_export(tmp_path_factory):
    """An export written by the training task of a run with prompt_format.answer_style=echo."""
    out = tmp_path_factory.mktemp("prompt_format") / "export"
    cfg = TrainConfig(name="echo", prompt_format=PromptFormat(answer_style="echo"))
    task = ReadTask()
    model = task.build_model(cfg, device="cpu")
    assert task.spec.answer_style == "echo"  # the loader writes echo answers
    task.export(model, cfg, str(out))
    return out


def test_the_export_keeps_the_runs_prompt_format(echo_export):
    assert json.loads((echo_export / PROMPT_FORMAT_FILE).read_text()) == {"answer_style": "echo"}
    assert load_prompt_format(echo_export) == PromptFormat(answer_style="echo")
    assert "answer_style" not in json.loads((echo_export / "read_config.json").read_text())["read_config"]


@pytest.mark.parametrize("load", [load_evaluate_config, load_predict_config])
def test_evaluation_and_prediction_default_to_the_saved_format(echo_export, load):
    common = ["data=[d]", "out=o"] if load is load_evaluate_config else ["image=i.png", "query=q", "out=o"]
    assert load([f"checkpoint={echo_export}", *common]).prompt_format.answer_style == "echo"
    assert load([*common]).prompt_format.answer_style == "plain"  # no checkpoint: READ's answers
    override = load([f"checkpoint={echo_export}", "prompt_format.answer_style=plain", *common])
    assert override.prompt_format.answer_style == "plain"


def test_training_from_an_export_defaults_to_its_format(echo_export):
    from jobs.train import load_train_config

    cfg = load_train_config(["name=n", f"model.read_checkpoint={echo_export}"])
    assert cfg.prompt_format.answer_style == "echo"
    assert load_train_config(["name=n"]).prompt_format.answer_style == "plain"


def test_keys_of_older_configs_are_read_at_their_new_place(tmp_path, capsys):
    old = tmp_path / "old.yaml"
    old.write_text("name: old\nmodel:\n  num_points: 12\n  t_pos: 0.7\n  clip_num_layers: 3\n  answer_style: echo\n")
    cfg = load_config(TrainConfig, ["--config", str(old), "model.down_sample=1", "model.projector_init_gain=4"])
    assert (cfg.model.sasp.num_points, cfg.model.sasp.t_pos, cfg.model.sasp.down_sample) == (12, 0.7, 1)
    assert (cfg.model.tiny.clip_num_layers, cfg.model.tiny.projector_init_gain) == (3, 4.0)
    assert cfg.prompt_format.answer_style == "echo"
    notes = capsys.readouterr().err
    assert "model.num_points is now model.sasp.num_points" in notes
    assert "model.answer_style is now prompt_format.answer_style" in notes


def test_a_real_preset_refuses_tiny_overrides():
    with pytest.raises(SystemExit, match=r"model.tiny.llm_num_layers=1: model.tiny.\* overrides apply only to "
                                         r"preset=tiny"):
        load_config(TrainConfig, ["name=n", "model.preset=read-7b", "model.tiny.llm_num_layers=1"])
    assert build_read(ReadModelConfig(preset="tiny"))[0].cfg.tiny.changed() == {}
