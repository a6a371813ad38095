"""The prompt format travels with the weights: a training run's `prompt_format.*` (answer style, conversation
template, image-token count) is saved beside its export, and evaluation and prediction of that export default to it
and write their prompts in it (the user's keys still win). Older config keys still load."""

from __future__ import annotations

import json
import random

import pytest

from jobs._config import load_config
from jobs.evaluate import load_evaluate_config as load_eval
from jobs.evaluate import load_evaluate_config
from jobs.predict import load_predict_config
from model.build import build_read
from model.config import ReadModelConfig
from model.export import load_prompt_format
from model.prompt_format import PROMPT_FORMAT_FILE, PromptFormat
from model.read_prompt import LLAVA_V1, VICUNA_V1
from pipelines.data.conversation import build_conversations
from pipelines.evaluate.worker import EvalWorker
from pipelines.predict.predictor import Predictor
from pipelines.predict.prompts import prompt_text
from pipelines.predict.requests import make_request
from pipelines.train.config import TrainConfig
from pipelines.train.task import ReadTask
from tests.fixtures.evaluate import make_eval_sample


def trained_export(tmp_path_factory, name: str, prompt_format: PromptFormat):
    """An export written by the training task of a run with `prompt_format`, checking that its loader writes
    conversations in that format."""
    out = tmp_path_factory.mktemp("prompt_format") / name
    cfg = TrainConfig(name=name, prompt_format=prompt_format)
    task = ReadTask()
    model = task.build_model(cfg, device="cpu")
    assert (task.spec.answer_style, task.spec.conversation) == (prompt_format.answer_style, prompt_format.conversation)
    task.export(model, cfg, str(out))
    return out


@pytest.fixture(scope="module")
def echo_export(tmp_path_factory):
    return trained_export(tmp_path_factory, "echo", PromptFormat(answer_style="echo"))


@pytest.fixture(scope="module")
def vicuna_export(tmp_path_factory):
    return trained_export(tmp_path_factory, "vicuna", PromptFormat(conversation="vicuna_v1"))


def test_the_export_keeps_the_runs_prompt_format(echo_export):
    model_image_tokens = build_read(ReadModelConfig(preset="tiny"))[0].num_image_tokens
    saved = json.loads((echo_export / PROMPT_FORMAT_FILE).read_text())
    assert saved == {"answer_style": "echo", "conversation": "llava_v1", "image_tokens": model_image_tokens}
    assert load_prompt_format(echo_export) == PromptFormat(answer_style="echo", image_tokens=model_image_tokens)
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


def test_training_conversations_are_written_in_the_formats_template():
    sample = make_eval_sample(0, dataset="refcoco")
    for name, template in (("llava_v1", LLAVA_V1), ("vicuna_v1", VICUNA_V1)):
        convs = build_conversations(sample, rng=random.Random(0), num_classes_per_sample=2,
                                    conversation=name)
        assert convs and all(c.prompt.startswith(template.system + " USER: ") for c in convs)
    assert LLAVA_V1.system != VICUNA_V1.system
    with pytest.raises(ValueError, match="conversation must be one of"):
        build_conversations(sample, rng=random.Random(0), num_classes_per_sample=1,
                            conversation="chatml")
    with pytest.raises(ValueError, match="prompt_format.conversation must be one of"):
        PromptFormat(conversation="chatml")


def test_evaluation_and_prediction_prompt_in_the_exports_template(vicuna_export, tmp_path):
    cfg = load_eval([f"checkpoint={vicuna_export}", "data=[unused]", f"out={tmp_path / 'eval'}", "max_new_tokens=2"])
    assert cfg.prompt_format.conversation == "vicuna_v1"
    evaluator = EvalWorker(cfg, worker=0, run_id="r").evaluator
    for dataset in ("refcoco", "fprefcoco"):  # teacher-forced and generation prompts under protocol=clean
        rows = evaluator.score(make_eval_sample(0, dataset=dataset), "x.tar")
        assert rows and all(r["prompt"].startswith(VICUNA_V1.system + " USER: <image>") for r in rows), rows[0]["prompt"]
    plain = load_eval([f"checkpoint={vicuna_export}", "data=[unused]", f"out={tmp_path / 'e2'}",
                       "prompt_format.conversation=llava_v1"])
    assert plain.prompt_format.conversation == "llava_v1"  # the user's key wins
    request = make_request(image="x.png", query="the red circle")
    fmt = load_predict_config([f"checkpoint={vicuna_export}", "image=x.png", "query=q", "out=o"]).prompt_format
    assert prompt_text(request, evaluator.tokenizer, fmt).startswith(VICUNA_V1.system)
    assert prompt_text(request, evaluator.tokenizer).startswith(LLAVA_V1.system)  # no format: READ's


def test_an_image_token_count_the_model_does_not_yield_is_refused(vicuna_export, tmp_path):
    model, tokenizer = build_read(ReadModelConfig(preset="tiny"))
    assert PromptFormat(image_tokens=model.num_image_tokens).num_image_tokens(model.num_image_tokens) == \
        model.num_image_tokens
    wrong = PromptFormat(image_tokens=model.num_image_tokens + 1)
    with pytest.raises(ValueError, match=r"prompt_format.image_tokens=\d+ but the model yields \d+ image tokens"):
        Predictor(model, tokenizer, prompt_format=wrong)
    cfg = load_eval([f"checkpoint={vicuna_export}", "data=[unused]", f"out={tmp_path / 'eval'}",
                     f"prompt_format.image_tokens={model.num_image_tokens + 1}"])
    with pytest.raises(ValueError, match="prompt_format.image_tokens"):
        EvalWorker(cfg, worker=0, run_id="r")
    with pytest.raises(ValueError, match="prompt_format.image_tokens"):
        ReadTask().build_model(TrainConfig(name="n", prompt_format=wrong), device="cpu")
