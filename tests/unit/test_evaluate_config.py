"""jobs.evaluate's config: an export's trained model settings are the defaults, the user's settings win."""

from __future__ import annotations

import json

import pytest

from jobs.evaluate import load_evaluate_config
from model.export import CONFIG_FILE
from model.prompt_format import PromptFormat
from pipelines.evaluate.config import export_model_defaults


@pytest.fixture(params=["v1", "v2"])
def export_folder(tmp_path, request):
    """A folder that looks like an export to the config layer (read_config.json and prompt_format.json; no
    weights), in the flat layout of format version 1 (answer style in read_config) or in version 2's."""
    folder = tmp_path / "export"
    folder.mkdir()
    if request.param == "v1":
        trained = {"preset": "tiny", "num_points": 12, "down_sample": 1, "t_pos": 0.7, "ce_weight": 3.0,
                   "answer_style": "echo", "clip_num_layers": 0}
    else:
        trained = {"preset": "tiny", "sasp": {"num_points": 12, "down_sample": 1, "t_pos": 0.7}, "ce_weight": 3.0}
        PromptFormat(answer_style="echo").save(folder)
    (folder / CONFIG_FILE).write_text(json.dumps({"read_config": trained}))
    return folder


def test_export_settings_become_the_evaluation_defaults(export_folder):
    cfg = load_evaluate_config([f"checkpoint={export_folder}", "data=[d]", "out=o"])
    assert (cfg.model.sasp.num_points, cfg.model.sasp.down_sample, cfg.model.sasp.t_pos) == (12, 1, 0.7)
    assert cfg.prompt_format.answer_style == "echo"  # evaluated with the answers it was trained with
    assert cfg.model.ce_weight == 1.0  # a training-only setting is not taken over
    assert export_model_defaults(str(export_folder)) == {"preset": "tiny",
                                                         "sasp": {"num_points": 12, "down_sample": 1, "t_pos": 0.7}}


def test_user_settings_win_over_the_export(export_folder, tmp_path):
    yaml = tmp_path / "eval.yaml"
    yaml.write_text("model:\n  t_pos: 0.9\n")  # an old config.yaml's flat key, read as model.sasp.t_pos
    cfg = load_evaluate_config([f"checkpoint={export_folder}", "--config", str(yaml), "model.sasp.num_points=5",
                                "data=[d]", "out=o"])
    assert (cfg.model.sasp.num_points, cfg.model.sasp.down_sample, cfg.model.sasp.t_pos) == (5, 1, 0.9)


def test_without_an_export_the_schema_defaults_apply(tmp_path):
    cfg = load_evaluate_config(["data=[d]", "out=o"])
    assert (cfg.model.sasp.num_points, cfg.model.sasp.down_sample) == (30, 2)
    assert export_model_defaults(str(tmp_path)) == {}


def test_local_paths_become_absolute_for_workers(monkeypatch, tmp_path, export_folder):
    monkeypatch.chdir(tmp_path)
    cfg = load_evaluate_config(["checkpoint=export", "data=[shards/val,s3://b/val]", "out=eval",
                                "model.tiny.vision_checkpoint=v/tower.safetensors", "model.sam_checkpoint=s3://w/sam.pth"])
    cfg.make_local_paths_absolute()
    assert cfg.checkpoint == str(export_folder) and cfg.out == str(tmp_path / "eval")
    assert cfg.data == [str(tmp_path / "shards" / "val"), "s3://b/val"]
    assert cfg.model.tiny.vision_checkpoint == str(tmp_path / "v" / "tower.safetensors")
    assert cfg.model.sam_checkpoint == "s3://w/sam.pth" and cfg.model.llava_path == ""
