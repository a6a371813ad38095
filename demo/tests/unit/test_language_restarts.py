"""demo.language.restarts: a stage still on its plateau at `restart_step` starts over from its first weights on
a new draw at a gentler lr; a stage that is not restarted trains exactly as without the rule."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from demo.language import LanguagePretrainConfig
from demo.language import pretrain as pretrain_module
from demo.language.pretrain import pretrain_llava
from demo.language.restarts import attempt_streams, restart_lines, stalled
from model.build import build_read
from model.config import ReadModelConfig, TinyConfig

SHARED = ("step", "loss", "loss_presence", "acc", "acc_colour", "acc_shape")


def _run(monkeypatch=None, streams_of=None, **restart) -> tuple[list[dict], dict[str, torch.Tensor]]:
    if streams_of is not None:
        monkeypatch.setattr(pretrain_module, "attempt_streams", lambda cfg, attempt: attempt_streams(cfg, streams_of))
    torch.manual_seed(0)
    model, tokenizer = build_read(ReadModelConfig(tiny=TinyConfig(llm_init_std=0.05)))
    cfg = LanguagePretrainConfig(kinds=["colour", "shape"], steps=6, eval_every=2, eval_questions=16, batch_size=4,
                                 warmup_steps=1, model=model.cfg, **restart)
    rows = pretrain_llava(cfg, model, tokenizer, log=lambda row: None)
    return rows, {k: t.detach().clone() for k, t in model.llava.state_dict().items()}


def _shared(rows: list[dict]) -> list[tuple]:
    return [tuple(row[k] for k in SHARED) for row in rows]


def test_the_rule_reads_only_the_restart_step_and_only_while_restarts_are_left():
    cfg = LanguagePretrainConfig(kinds=["colour", "shape"], steps=2000, restart_step=750, max_restarts=2,
                                 restart_below={"acc_colour": 0.72, "acc_shape": 0.72})
    stuck = {"step": 750, "acc_colour": 0.99, "acc_shape": 0.61}
    assert stalled(cfg, stuck, attempt=0) == ["acc_shape"]
    assert stalled(cfg, stuck, attempt=1) == ["acc_shape"]
    assert stalled(cfg, stuck, attempt=2) == [], "the last attempt trains on"
    assert stalled(cfg, stuck | {"step": 500}, attempt=0) == []
    assert stalled(cfg, stuck | {"acc_shape": 0.72}, attempt=0) == []
    assert stalled(cfg, {"step": 750, "acc_colour": float("nan"), "acc_shape": 0.8}, attempt=0) == ["acc_colour"]
    assert stalled(LanguagePretrainConfig(), stuck, attempt=0) == []


def test_attempt_zero_draws_what_a_run_without_restarts_draws_and_later_attempts_draw_anew():
    cfg = LanguagePretrainConfig(seed=3)
    first, second = attempt_streams(cfg, 0), attempt_streams(cfg, 1)
    assert first["presence"][0].random() == np.random.default_rng([3, 0]).random()
    assert first["presence"][1].random() == random.Random(3).random()
    assert first["pointing"][1].random() == random.Random(3002).random()
    for name in first:
        a, b = attempt_streams(cfg, 0)[name], second[name]
        assert a[0].random() != b[0].random() and a[1].random() != b[1].random(), name
    assert attempt_streams(cfg, 2)["presence"][0].random() != attempt_streams(cfg, 1)["presence"][0].random()


def test_a_run_that_is_not_restarted_trains_exactly_as_without_the_rule():
    plain_rows, plain_weights = _run()
    rows, weights = _run(restart_step=2, restart_below={"acc": 0.0})
    assert _shared(rows) == _shared(plain_rows) and [r["attempt"] for r in rows] == [0, 0, 0]
    assert all(torch.equal(weights[k], t) for k, t in plain_weights.items())


def test_a_stalled_attempt_starts_over_from_the_first_weights_on_a_new_draw(monkeypatch):
    rows, weights = _run(restart_step=2, max_restarts=1, restart_below={"acc_colour": 1.0, "acc_shape": 1.0})
    assert [(r["attempt"], r["step"]) for r in rows] == [(0, 2), (1, 2), (1, 4), (1, 6)]
    assert [r["kept"] for r in rows] == [False, False, False, True]
    # the second attempt is a fresh run at half the lr on attempt 1's draw: same weights in, new optimizer, same rows
    fresh_rows, fresh_weights = _run(monkeypatch, streams_of=1, lr=0.5e-3)
    assert _shared(rows[1:]) == _shared(fresh_rows)
    assert all(torch.equal(weights[k], t) for k, t in fresh_weights.items())
    assert _shared(rows[:1]) != _shared(fresh_rows[:1]), "attempt 0 must have drawn other scenes"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"restart_below": {"acc": 0.7}}, "needs restart_step"),
    ({"restart_step": 250}, "restart_below is empty"),
    ({"restart_step": 300, "restart_below": {"acc": 0.7}}, "multiple of eval_every=250"),
    ({"restart_step": 2500, "restart_below": {"acc": 0.7}}, "below steps=2500"),
    ({"restart_step": 250, "restart_below": {"answer_see": 0.7}}, "use one of ['acc', 'acc_colour']"),
    ({"restart_step": 250, "restart_below": {"acc_shape": 0.7}}, "'acc_shape'"),
    ({"restart_step": 250, "restart_below": {"acc": 1.5}}, "restart_below.acc must be in [0, 1]"),
    ({"max_restarts": -1}, "max_restarts must be >= 0"),
    ({"restart_lr_scale": 0.0}, "restart_lr_scale must be in (0, 1]"),
])
def test_bad_restart_settings_name_the_key_and_the_fix(overrides, message):
    with pytest.raises(ValueError, match=None) as err:
        LanguagePretrainConfig(**overrides)
    assert message in str(err.value)


def test_each_restart_is_reported_with_the_metrics_that_stalled():
    cfg = LanguagePretrainConfig(kinds=["colour", "shape"], steps=2000, restart_step=1000,
                                 restart_below={"acc_colour": 0.75, "acc_shape": 0.75})
    rows = [{"step": 1000, "attempt": 0, "acc_colour": 0.99, "acc_shape": 0.615},
            {"step": 1000, "attempt": 1, "acc_colour": 0.5, "acc_shape": 0.6},
            {"step": 1000, "attempt": 2, "acc_colour": 0.99, "acc_shape": 0.8}, {"step": 2000, "attempt": 2}]
    lines = restart_lines(cfg, rows)
    assert len(lines) == 2
    assert lines[0] == ("attempt 0 was still on its plateau at step 1000 (acc_shape 61.5% < 75%); attempt 1 started "
                        "over from the first weights on a new draw at lr 0.0005")
    assert "(acc_colour 50.0% < 75%, acc_shape 60.0% < 75%); attempt 2" in lines[1]
