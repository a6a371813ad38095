"""demo.language: presence questions are right about their scene and balanced; the yes/no loop trains."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
import torch

from demo.language import LanguagePretrainConfig
from demo.language.decisions import decision_metrics, greedy_says_seg, question_prompts
from demo.language.pointing import PointingSampler, object_patches
from demo.language.pretrain import (QuestionSampler, accuracy, answer_ce, answer_ids, best_row,
                                    conversation_losses, held_out_batch, lr_factor, missed_targets,
                                    pointing_accuracy, pretrain_llava, similarity_maps, target_shortfall,
                                    yes_no_logits)
from demo.language.questions import KINDS, presence_phrase
from demo.losses import pointing_ce
from demo.tests.fixtures.language import fit_one_batch
from model.build import build_read
from model.config import ReadModelConfig, TinyConfig
from model.prompt_format import PromptFormat
from pipelines.synth.palette import COLOURS, SHAPES
from pipelines.synth.scene import sample_scene


def _named(phrase: str) -> tuple[str | None, str | None]:
    words = phrase.removeprefix("a ").split()
    colour = words[0] if words[0] in COLOURS else None
    shape = words[-1] if words[-1] in SHAPES else None
    return colour, shape


@pytest.mark.parametrize("kind", KINDS)
def test_phrases_are_true_or_false_of_their_scene(kind):
    scene_rng, rng = np.random.default_rng(0), random.Random(0)
    for _ in range(200):
        scene = sample_scene(scene_rng, width=64, height=64, min_objects=2, max_objects=4, noise=6.0)
        for present in (True, False):
            colour, shape = _named(presence_phrase(rng, scene.objects, kind, present))
            assert (colour is not None) == (kind != "shape") and (shape is not None) == (kind != "colour")
            matches = [o for o in scene.objects
                       if (colour is None or o.colour == colour) and (shape is None or o.shape == shape)]
            assert bool(matches) == present, (kind, present, colour, shape, scene.objects)


def test_absent_pairs_often_bind_present_parts():
    scene_rng, rng = np.random.default_rng(1), random.Random(1)
    bound = 0
    for _ in range(300):
        scene = sample_scene(scene_rng, width=64, height=64, min_objects=3, max_objects=4, noise=6.0)
        colour, shape = _named(presence_phrase(rng, scene.objects, "pair", False))
        bound += colour in {o.colour for o in scene.objects} and shape in {o.shape for o in scene.objects}
    assert 0.3 < bound / 300 < 0.8


def test_sampler_balances_answers_and_cycles_kinds():
    model, tokenizer = build_read(ReadModelConfig())
    cfg = LanguagePretrainConfig(kinds=["colour", "shape"])
    sampler = QuestionSampler(cfg, tokenizer, num_image_tokens=model.num_image_tokens,
                              clip_size=model.clip_image_size)
    batch = sampler.batch(np.random.default_rng(0), random.Random(0), 400)
    assert 0.43 < batch.yes.float().mean() < 0.57
    assert batch.kinds[:4] == ["colour", "shape", "colour", "shape"]
    assert batch.pixels.shape == (400, 3, model.clip_image_size, model.clip_image_size)
    image_id = model.llava.config.image_token_id
    assert ((batch.input_ids == image_id).sum(1) == model.num_image_tokens).all()
    assert (batch.attention_mask[:, -1] == 1).all()  # left-padded: every question ends at the last position


def test_one_batch_is_learned():
    torch.manual_seed(0)
    model, tokenizer = build_read(ReadModelConfig(tiny=TinyConfig(llm_init_std=0.05)))
    cfg = LanguagePretrainConfig()
    sampler = QuestionSampler(cfg, tokenizer, num_image_tokens=model.num_image_tokens,
                              clip_size=model.clip_image_size)
    batch = sampler.batch(np.random.default_rng(0), random.Random(0), 8)
    yes_no = answer_ids(tokenizer)
    target = (~batch.yes).long()  # column 0 is "yes"
    losses = fit_one_batch(model.llava, lambda: torch.nn.functional.cross_entropy(
        yes_no_logits(model.llava, batch, yes_no), target), steps=40)
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("objective, figures", [("caption", ["caption_colour", "caption_shape"]),
                                                ("lookup", ["lookup_acc"])])
def test_an_objective_trains_beside_presence_and_reports(objective, figures):
    torch.manual_seed(0)
    model, tokenizer = build_read(ReadModelConfig(tiny=TinyConfig(llm_init_std=0.05)))
    cfg = LanguagePretrainConfig(objectives=[objective, "presence"], model=model.cfg, steps=4, eval_every=2,
                                 eval_questions=16, batch_size=4, warmup_steps=1)
    rows = pretrain_llava(cfg, model, tokenizer, log=lambda row: None)
    assert [r["step"] for r in rows] == [2, 4]
    for row in rows:
        assert row["loss"] == pytest.approx(row[f"loss_{objective}"] + row["loss_presence"])
        assert all(0 <= row[name] <= 1 for name in [*figures, "acc"])
    assert rows[1][f"loss_{objective}"] < rows[0][f"loss_{objective}"]


def test_config_refusals_name_the_key():
    with pytest.raises(ValueError, match="kinds"):
        LanguagePretrainConfig(kinds=["size"])
    with pytest.raises(ValueError, match="tiny preset only"):
        LanguagePretrainConfig(model=ReadModelConfig(preset="read-7b"))
    with pytest.raises(ValueError, match="warmup_steps"):
        LanguagePretrainConfig(steps=10, warmup_steps=10)
    with pytest.raises(ValueError, match="target_accuracy"):
        LanguagePretrainConfig(target_accuracy=1.5)
    with pytest.raises(ValueError, match="objectives"):
        LanguagePretrainConfig(objectives=["captions"])
    with pytest.raises(ValueError, match="target_accuracy stops on acc: add 'presence' to objectives"):
        LanguagePretrainConfig(objectives=["pointing"], target_accuracy=0.8)
    with pytest.raises(ValueError, match="target_see stops on answer_see: add 'answers' to objectives"):
        LanguagePretrainConfig(objectives=["presence", "pointing"], target_see=0.9)
    with pytest.raises(ValueError, match="target_see must be in"):
        LanguagePretrainConfig(objectives=["answers"], target_see=90)
    with pytest.raises(ValueError, match="false_premise_rate"):
        LanguagePretrainConfig(false_premise_rate=1.0)
    with pytest.raises(ValueError, match="keep_best='answer_see'.*add 'answers' to objectives"):
        LanguagePretrainConfig(objectives=["presence"], keep_best="answer_see")
    with pytest.raises(ValueError, match="keep_best='see'.*use one of"):
        LanguagePretrainConfig(keep_best="see")


def test_lr_warms_up_then_decays_to_zero_at_the_last_step():
    cfg = LanguagePretrainConfig(steps=110, warmup_steps=10)
    assert [lr_factor(cfg, s) for s in (0, 4, 9, 10, 60, 110)] == pytest.approx([0.1, 0.5, 1.0, 1.0, 0.5, 0.0])


def _pretrain_tiny(objectives: list[str], **target: float) -> list[dict]:
    torch.manual_seed(0)
    model, tokenizer = build_read(ReadModelConfig(tiny=TinyConfig(llm_init_std=0.05)))
    cfg = LanguagePretrainConfig(objectives=objectives, steps=8, eval_every=2, eval_questions=16, batch_size=4,
                                 warmup_steps=1, false_premise_rate=0.5, model=model.cfg,
                                 prompt_format=PromptFormat(answer_style="echo"), **target)
    return pretrain_llava(cfg, model, tokenizer, log=lambda row: None)


@pytest.mark.parametrize(("objectives", "key", "metric"), [(["presence"], "target_accuracy", "acc"),
                                                             (["answers"], "target_see", "answer_see")])
def test_training_stops_at_the_first_evaluation_that_reaches_the_target(objectives, key, metric):
    full = _pretrain_tiny(objectives)  # no target: every evaluation
    assert [row["step"] for row in full] == [2, 4, 6, 8]
    target = max(row[metric] for row in full[:-1])
    first = next(i for i, row in enumerate(full) if row[metric] >= target)
    stopped = _pretrain_tiny(objectives, **{key: target})
    assert target > 0 and len(stopped) < len(full)
    assert [(r["step"], r[metric]) for r in stopped] == [(r["step"], r[metric]) for r in full[:first + 1]]


def test_with_both_targets_an_evaluation_must_reach_both():
    cfg = LanguagePretrainConfig(objectives=["presence", "answers"], target_accuracy=0.8, target_see=0.9)
    assert missed_targets(cfg, {"acc": 0.85, "answer_see": 0.95}) == []
    assert missed_targets(cfg, {"acc": 0.85, "answer_see": 0.85}) == ["answer_see"]
    assert missed_targets(cfg, {"acc": float("nan"), "answer_see": 0.95}) == ["acc"]
    assert missed_targets(LanguagePretrainConfig(), {"acc": 0.1}) == []


def test_best_row_is_the_first_highest_nan_lowest_or_the_last():
    rows = [{"step": 1, "acc": 0.6}, {"step": 2, "acc": float("nan")}, {"step": 3, "acc": 0.7}, {"step": 4, "acc": 0.7},
            {"step": 5, "acc": 0.5}]
    assert best_row(LanguagePretrainConfig(keep_best="acc"), rows)["step"] == 3
    assert best_row(LanguagePretrainConfig(), rows)["step"] == 5
    assert best_row(LanguagePretrainConfig(keep_best="acc"), rows[1:2])["step"] == 2


def test_keep_best_leaves_the_weights_of_the_best_evaluation():
    torch.manual_seed(0)
    model, tokenizer = build_read(ReadModelConfig(tiny=TinyConfig(llm_init_std=0.05)))
    cfg = LanguagePretrainConfig(steps=8, eval_every=1, eval_questions=16, batch_size=4, warmup_steps=1,
                                 keep_best="acc")
    weights = {}

    def snapshot(row: dict) -> None:
        weights[row["step"]] = {k: t.detach().clone() for k, t in model.llava.state_dict().items()}

    rows = pretrain_llava(cfg, model, tokenizer, log=snapshot)
    kept = [row for row in rows if row["kept"]]
    accs = [row["acc"] for row in rows]
    assert len(kept) == 1 and kept[0]["acc"] == max(accs) and kept[0] is rows[accs.index(max(accs))]
    assert kept[0] is not rows[-1], "this seed's best evaluation must not be the last, or the test proves nothing"
    final = model.llava.state_dict()
    assert all(torch.equal(final[k], t) for k, t in weights[kept[0]["step"]].items())
    assert not all(torch.equal(final[k], t) for k, t in weights[rows[-1]["step"]].items())
    sampler = QuestionSampler(cfg, tokenizer, num_image_tokens=model.num_image_tokens, clip_size=model.clip_image_size)
    assert accuracy(model.llava, held_out_batch(cfg, sampler), answer_ids(tokenizer))["acc"] == kept[0]["acc"]


def test_a_warm_start_below_its_target_is_reported():
    rows = [{"step": 250, "acc": 0.6, "answer_see": 0.7}, {"step": 500, "acc": 0.7, "answer_see": 0.8}]
    assert "acc 70.0% after 500 steps is below target_accuracy=0.85" in target_shortfall(
        LanguagePretrainConfig(target_accuracy=0.85), rows)
    assert target_shortfall(LanguagePretrainConfig(target_accuracy=0.7), rows) == ""
    assert target_shortfall(LanguagePretrainConfig(), rows) == ""
    both = LanguagePretrainConfig(objectives=["presence", "answers"], target_accuracy=0.7, target_see=0.9)
    warning = target_shortfall(both, rows)
    assert "answer_see 80.0% after 500 steps is below target_see=0.9" in warning and "target_accuracy" not in warning


# ---------------------------------------------------------------- pointing


def _pointing_setup(answer_style: str = "echo"):
    torch.manual_seed(0)
    model, tokenizer = build_read(ReadModelConfig(tiny=TinyConfig(llm_init_std=0.05)))
    cfg = LanguagePretrainConfig(objectives=["pointing"], model=model.cfg,
                                 prompt_format=PromptFormat(answer_style=answer_style))
    sampler = PointingSampler(cfg, tokenizer, num_image_tokens=model.num_image_tokens,
                              clip_size=model.clip_image_size)
    return model, tokenizer, sampler


@pytest.mark.parametrize("answer_style", ["echo", "plain"])
def test_pointing_prompts_are_reads_conversations_about_the_target(answer_style):
    model, tokenizer, sampler = _pointing_setup(answer_style)
    batch = sampler.batch(np.random.default_rng(0), random.Random(0), 24)
    assert ((batch.input_ids == model.seg_token_id).sum(1) == 1).all()
    assert ((batch.input_ids == model.llava.config.image_token_id).sum(1) == model.num_image_tokens).all()
    assert batch.target.any(1).all() and not (batch.target & batch.others).any()
    assert set(batch.types) <= {"colour", "shape", "colour+shape", "spatial", "size"} and len(set(batch.types)) >= 3
    nouns = set(SHAPES) | {"shape"}
    for ids, mask in zip(batch.input_ids, batch.attention_mask):
        answer = tokenizer.decode(ids[mask.bool()]).split("ASSISTANT:")[1]
        before_seg = re.findall(r"[a-z]+", answer.split("[SEG]")[0])
        assert bool(nouns & set(before_seg)) == (answer_style == "echo"), answer  # echo answers name the query


def test_object_patches_follow_the_mask():
    mask = np.zeros((64, 64), np.uint8)
    mask[0:16, 8:24] = 1  # exactly patch columns 1-2 of rows 0-1 on an 8x8 grid
    patches = object_patches(mask, 8).reshape(8, 8)
    assert patches.sum() == 4 and patches[:2, 1:3].all()
    small = np.zeros((64, 64), np.uint8)
    small[10:12, 10:12] = 1  # a quarter-covered patch: the most covered one
    assert object_patches(small, 8).sum() == 1


class _Maps:
    """A fake READ whose similarity map is given: `sign` * (the prompt's target patches). Its "hidden states" are the
    maps themselves, which `seg_similarity` hands back."""

    def __init__(self, held_out, sign: float) -> None:
        self.maps = sign * held_out.target.float() + 0.01 * torch.arange(held_out.target.shape[1])
        self.seen = 0

    def hidden_states(self, *, input_ids, **_):
        out = self.maps[self.seen:self.seen + len(input_ids)]
        self.seen += len(input_ids)
        return out

    def seg_similarity(self, hidden, input_ids):
        return None, None, hidden


def test_pointing_accuracy_scores_following_and_avoiding_maps():
    _, _, sampler = _pointing_setup()
    held_out = sampler.batch(np.random.default_rng(1), random.Random(1), 40)
    follows = pointing_accuracy(_Maps(held_out, 1.0), held_out, chunk=16)
    avoids = pointing_accuracy(_Maps(held_out, -1.0), held_out, chunk=16)
    assert follows["point_auc"] == 1.0 and follows["point_hit"] == 1.0
    assert avoids["point_auc"] == 0.0 and avoids["point_hit"] == 0.0
    assert {k for k in follows if k.startswith("point_auc_")} == {f"point_auc_{t}" for t in set(held_out.types)}


def test_pointing_is_learned_on_one_batch():
    model, tokenizer, sampler = _pointing_setup()
    batch = sampler.batch(np.random.default_rng(2), random.Random(2), 8)
    scale = model.llava.config.text_config.hidden_size ** 0.5
    losses = fit_one_batch(model.llava, lambda: pointing_ce(similarity_maps(model, batch), batch.target, scale=scale),
                           steps=30)
    assert losses[-1] < 0.5 * losses[0]
    assert pointing_accuracy(model, batch)["point_hit"] >= 0.75


def test_both_objectives_train_and_report():
    torch.manual_seed(0)
    model, tokenizer = build_read(ReadModelConfig(tiny=TinyConfig(llm_init_std=0.05)))
    cfg = LanguagePretrainConfig(objectives=["presence", "pointing", "answers"], model=model.cfg, steps=4,
                                 eval_every=2, eval_questions=16, batch_size=4, warmup_steps=1,
                                 prompt_format=PromptFormat(answer_style="echo"))
    rows = pretrain_llava(cfg, model, tokenizer, log=lambda row: None)
    assert [r["step"] for r in rows] == [2, 4]
    for row in rows:
        assert row["loss"] == pytest.approx(row["loss_presence"] + row["loss_pointing"] + row["loss_answers"])
        assert 0 <= row["acc"] <= 1 and 0 <= row["point_auc"] <= 1 and 0 <= row["point_hit"] <= 1
        assert row["answer_ce"] > 0


@pytest.mark.parametrize("freeze", [False, True])
def test_the_vision_tower_trains_unless_frozen(freeze):
    torch.manual_seed(0)
    model, tokenizer = build_read(ReadModelConfig(tiny=TinyConfig(llm_init_std=0.05)))
    cfg = LanguagePretrainConfig(model=model.cfg, steps=3, eval_every=3, eval_questions=8, batch_size=4,
                                 warmup_steps=1, freeze_vision_tower=freeze)
    tower, rest = model.llava.model.vision_tower, model.llava.model.multi_modal_projector
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in (tower, rest)]
    pretrain_llava(cfg, model, tokenizer, log=lambda row: None)
    same = [all(torch.equal(b[k], v) for k, v in m.state_dict().items()) for b, m in zip(before, (tower, rest))]
    assert same == [freeze, False]


def test_false_premises_are_answered_with_corrections_and_no_seg():
    model, tokenizer, sampler = _pointing_setup()
    batch = sampler.batch(np.random.default_rng(3), random.Random(3), 60, false_premise_rate=0.4)
    fp = ~batch.exists
    assert 0.2 < fp.float().mean() < 0.6
    seg = (batch.input_ids == model.seg_token_id).sum(1)
    assert (seg[fp] == 0).all() and (seg[~fp] == 1).all()
    assert not batch.target[fp].any() and batch.target[~fp].any(1).all()
    assert [t for t, f in zip(batch.types, fp.tolist()) if f] == ["false_premise"] * int(fp.sum())
    assert ((batch.labels != -100).sum(1) > 0).all()  # every conversation has a supervised answer
    true = batch.true_premises()
    assert len(true.types) == int((~fp).sum()) and true.exists.all()


def test_answers_and_pointing_share_one_pass_and_learn_one_batch():
    model, tokenizer, sampler = _pointing_setup()
    cfg = LanguagePretrainConfig(objectives=["pointing", "answers"], model=model.cfg)
    batch = sampler.batch(np.random.default_rng(4), random.Random(4), 8, false_premise_rate=0.3)
    optimizer = torch.optim.AdamW(model.llava.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        parts = conversation_losses(cfg, model, batch, scale=11.3)
        first = first or {k: v.item() for k, v in parts.items()}
        optimizer.zero_grad()
        sum(parts.values()).backward()
        optimizer.step()
    assert set(parts) == {"pointing", "answers"}
    assert all(parts[k].item() < 0.5 * first[k] for k in parts), (first, parts)
    assert answer_ce(model, batch, chunk=3) < 0.5 * first["answers"]


def test_question_prompts_end_where_the_evaluation_prompt_ends():
    model, tokenizer, sampler = _pointing_setup()
    batch = sampler.batch(np.random.default_rng(5), random.Random(5), 12, false_premise_rate=0.5)
    for prompt, ids, mask in zip(question_prompts(batch), batch.input_ids, batch.attention_mask):
        full = ids[mask.bool()]
        assert torch.equal(full[:len(prompt)], prompt) and len(prompt) < len(full)
        assert tokenizer.decode(prompt).rstrip().endswith("ASSISTANT:")
        assert model.seg_token_id not in prompt.tolist()


def test_decision_metrics_count_kept_and_refused_per_edit():
    _, _, sampler = _pointing_setup()
    batch = sampler.batch(np.random.default_rng(6), random.Random(6), 40, false_premise_rate=0.5)
    exists = batch.exists
    assert {"attribute", "object"} <= set(batch.edits) and set(e for e, x in zip(batch.edits, exists) if x) == {""}
    assert decision_metrics(exists.clone(), batch) == {
        "answer_kept": 1.0, "answer_refused": 1.0, "answer_see": 1.0,
        **{f"answer_refused_{e}": 1.0 for e in set(batch.edits) - {""}}}
    always = decision_metrics(torch.ones_like(exists), batch)
    assert always["answer_kept"] == 1.0 and always["answer_refused"] == 0.0 and always["answer_see"] == 0.5
    attribute = torch.tensor([e != "attribute" for e in batch.edits])  # refuse the colour edits only
    some = decision_metrics(attribute, batch)
    assert some["answer_refused_attribute"] == 1.0 and some["answer_refused_object"] == 0.0
    assert some["answer_refused"] == pytest.approx(batch.edits.count("attribute") / int((~exists).sum()))


def test_greedy_decisions_match_read_generate_after_learning_a_batch():
    model, tokenizer, sampler = _pointing_setup()
    cfg = LanguagePretrainConfig(objectives=["answers"], model=model.cfg)
    batch = sampler.batch(np.random.default_rng(7), random.Random(7), 8, false_premise_rate=0.4)
    optimizer = torch.optim.AdamW(model.llava.parameters(), lr=3e-3)
    for _ in range(60):
        loss = conversation_losses(cfg, model, batch, scale=11.3)["answers"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    says = greedy_says_seg(model, batch, chunk=3)
    assert torch.equal(says, batch.exists)  # the memorised batch: [SEG] exactly for its true premises
    sam = torch.zeros(3, model.sam_image_size, model.sam_image_size)
    for i, prompt in enumerate(question_prompts(batch)):
        out = model.generate(clip_image=batch.pixels[i], sam_image=sam, resized_size=(64, 64),
                             original_size=(64, 64), input_ids=prompt[None], max_new_tokens=24)
        assert (model.seg_token_id in out.token_ids) == bool(says[i]), out.text
