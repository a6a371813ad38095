"""demo.jobs.pretrain_language on a real local Ray cluster: the LLaVA folder loads into READ through model.llava_path
and answers and points exactly as the job measured."""

from __future__ import annotations

import pathlib
import pandas as pd
import pytest
import torch

from demo.jobs import pretrain_language
from demo.language import LanguagePretrainConfig
from demo.language.captions import CaptionSampler, caption_accuracy, word_ids
from demo.language.decisions import decision_metrics, greedy_says_seg
from demo.language.pointing import PointingSampler
from demo.language.pretrain import (QuestionSampler, accuracy, answer_ce, answer_ids, held_out_batch,
                                    held_out_captions, held_out_pointing, pointing_accuracy)
from jobs._config import load_config
from model.build import build_read
from model.config import ReadModelConfig

ARGS = ["steps=6", "eval_every=3", "eval_questions=24", "batch_size=4", "warmup_steps=2", "num_cpus=1", "seed=3",
        "kinds=[colour,pair]", "objectives=[caption,presence,pointing,answers]"]


@pytest.fixture(scope="module")
def job_out(local_ray, tmp_path_factory) -> tuple[pathlib.Path, list[dict]]:
    out = tmp_path_factory.mktemp("language") / "language"
    return out, pretrain_language.main([*ARGS, f"out={out}"])


def test_job_writes_llava_metrics_and_config(job_out):
    out, rows = job_out
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert list(metrics["step"]) == [3, 6] == [r["step"] for r in rows]
    assert {"acc", "acc_colour", "acc_pair", "loss", "loss_caption", "loss_presence", "loss_pointing", "loss_answers",
            "caption_colour", "caption_shape", "point_auc", "point_hit", "answer_ce", "answer_kept", "answer_refused",
            "answer_see"} <= set(metrics.columns)
    assert metrics["kept"].tolist() == [False, True]  # no keep_best: llava/ holds the last evaluation's weights
    assert metrics[["caption_colour", "caption_shape"]].stack().between(0, 1).all()
    assert metrics[["answer_kept", "answer_refused", "answer_see"]].stack().between(0, 1).all()
    assert metrics[["point_auc", "point_hit"]].stack().between(0, 1).all()
    assert metrics[["acc", "acc_colour", "acc_pair"]].stack().between(0, 1).all()
    assert (out / pretrain_language.LLAVA_DIR / pretrain_language.COMPLETE).is_file()
    cfg = load_config(LanguagePretrainConfig, ["--config", str(out / "config.yaml")])
    assert cfg.steps == 6 and cfg.seed == 3 and cfg.kinds == ["colour", "pair"]


def test_read_built_from_the_folder_answers_as_measured(job_out):
    out, rows = job_out
    model, tokenizer = build_read(ReadModelConfig(llava_path=str(out / pretrain_language.LLAVA_DIR)))
    fresh, _ = build_read(ReadModelConfig())
    assert any(not torch.equal(t, fresh.llava.state_dict()[k]) for k, t in model.llava.state_dict().items())
    cfg = load_config(LanguagePretrainConfig, ["--config", str(out / "config.yaml")])
    sampler = QuestionSampler(cfg, tokenizer, num_image_tokens=model.num_image_tokens,
                              clip_size=model.clip_image_size)
    held_out = held_out_batch(cfg, sampler)
    model.llava.eval()
    assert accuracy(model.llava, held_out, answer_ids(tokenizer)) == {k: v for k, v in rows[-1].items()
                                                                       if k.startswith("acc")}
    pointing = PointingSampler(cfg, tokenizer, num_image_tokens=model.num_image_tokens,
                               clip_size=model.clip_image_size)
    conversations = held_out_pointing(cfg, pointing, cfg.false_premise_rate)
    assert pointing_accuracy(model, conversations) == {k: v for k, v in rows[-1].items() if k.startswith("point_")}
    assert answer_ce(model, conversations) == pytest.approx(rows[-1]["answer_ce"], abs=1e-5)
    decisions = decision_metrics(greedy_says_seg(model, conversations), conversations)
    assert decisions == {k: v for k, v in rows[-1].items() if k.startswith("answer_") and k != "answer_ce"}
    captions = held_out_captions(cfg, CaptionSampler(cfg, tokenizer, num_image_tokens=model.num_image_tokens,
                                                     clip_size=model.clip_image_size))
    assert caption_accuracy(model.llava, captions, word_ids(tokenizer)) == {
        k: v for k, v in rows[-1].items() if k.startswith("caption_")}


def test_a_real_preset_is_refused_before_any_work(tmp_path):
    # the default model carries tiny-only init overrides (model.tiny.llm_init_std), which a real preset refuses
    with pytest.raises(SystemExit, match=r"model.tiny.\* overrides apply only to preset=tiny, not 'read-7b'"):
        pretrain_language.main([f"out={tmp_path / 'l'}", "model.preset=read-7b"])
    assert not (tmp_path / "l").exists()


def test_a_missing_earlier_stage_is_refused_before_any_work(tmp_path):
    with pytest.raises(SystemExit, match="model.llava_path: .*does not exist"):
        pretrain_language.main([f"out={tmp_path / 'l'}", f"model.llava_path={tmp_path / 'stage1' / 'llava'}"])
    assert not (tmp_path / "l").exists()


def test_a_second_stage_continues_from_the_first_folder(job_out, tmp_path):
    """model.llava_path=<an earlier run's llava/> starts the next curriculum stage from those weights, not from the
    random LLaVA its own seed would build."""
    out, _ = job_out
    first = out / pretrain_language.LLAVA_DIR
    stage = tmp_path / "stage2"
    pretrain_language.main([*ARGS, "steps=2", "eval_every=2", "warmup_steps=1", "objectives=[answers]", "seed=4",
                            f"model.llava_path={first}", f"out={stage}"])
    before = build_read(ReadModelConfig(llava_path=str(first)))[0].llava.state_dict()
    after = build_read(ReadModelConfig(llava_path=str(stage / pretrain_language.LLAVA_DIR)))[0].llava.state_dict()
    torch.manual_seed(4)
    own_seed = build_read(LanguagePretrainConfig().model)[0].llava.state_dict()
    moved = sum((after[k] - before[k]).float().pow(2).sum() for k in after)
    apart = sum((own_seed[k] - before[k]).float().pow(2).sum() for k in before)
    assert 0 < moved < 0.01 * apart
