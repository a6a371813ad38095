"""demo.language.lookups: a lookup names a shape that one object has and is answered with that object's colour;
the answer is one token per colour; the held-out accuracy reads the likeliest colour; lookups train inside
pretrain_llava (test_language_pretrain.py)."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
import torch

from demo.language.lookups import LookupSampler, colour_answer_ids, lookup_object
from demo.language.pretrain import lookup_accuracy, next_token_logits
from demo.tests.fixtures.language import fit_one_batch, tiny_sampler
from pipelines.synth.palette import COLOURS
from pipelines.synth.scene import sample_scene

QUESTION = re.compile(r"What colour is the (\w+)\? ASSISTANT:$")


def test_the_looked_up_shape_names_one_object_of_its_scene():
    rng, pick = np.random.default_rng(0), random.Random(0)
    for _ in range(100):
        scene = sample_scene(rng, width=64, height=64, min_objects=2, max_objects=4, noise=6.0)
        target = lookup_object(pick, scene.objects)
        shapes = [o.shape for o in scene.objects]
        if target is None:
            assert all(shapes.count(s) > 1 for s in shapes)
        else:
            assert target in scene.objects and shapes.count(target.shape) == 1
    alike = [type(o)(**{**vars(o), "shape": "star"}) for o in scene.objects[:2]]
    assert lookup_object(pick, alike) is None


def _sampler():
    return tiny_sampler(LookupSampler, "lookup")


def test_questions_name_a_shape_and_answers_are_its_colour_token():
    model, tokenizer, sampler = _sampler()
    ids = colour_answer_ids(tokenizer)
    assert set(ids) == set(COLOURS) and len(set(ids.values())) == len(COLOURS)
    assert tokenizer.decode([ids["red"]]).strip() == "red"
    batch = sampler.batch(np.random.default_rng(1), random.Random(1), 12)
    assert batch.pixels.shape == (12, 3, model.clip_image_size, model.clip_image_size)
    assert ((batch.input_ids == model.llava.config.image_token_id).sum(1) == model.num_image_tokens).all()
    scene_rng, pick, expected = np.random.default_rng(1), random.Random(1), []  # the sampler's draws, replayed
    while len(expected) < 12:
        scene = sample_scene(scene_rng, **sampler.cfg.scene_options())
        if (target := lookup_object(pick, scene.objects)) is not None:
            expected.append(target)
    for ids_T, mask_T, answer, target in zip(batch.input_ids, batch.attention_mask, batch.answer.tolist(), expected):
        text = tokenizer.decode(ids_T[mask_T.bool()])
        assert QUESTION.search(text).group(1) == target.shape, text
        assert answer == ids[target.colour]
    assert len(set(batch.answer.tolist())) > 1


def test_a_tokenizer_that_splits_a_colour_is_refused():
    class Splitting:
        def __call__(self, text, add_special_tokens=False):
            return type("Enc", (), {"input_ids": [1, 2] if text == " purple" else [hash(text) % 1000]})()

    with pytest.raises(ValueError, match="one token"):
        colour_answer_ids(Splitting())


class _Answering(torch.nn.Module):
    """Puts its logit mass on a fixed token per question: the given answers."""

    def __init__(self, vocab: int, answers: torch.Tensor) -> None:
        super().__init__()
        self.vocab, self.answers, self.seen = vocab, answers, 0

    def forward(self, *, input_ids, **_) -> object:
        chosen = self.answers[self.seen:self.seen + len(input_ids)]
        self.seen += len(input_ids)
        logits = torch.nn.functional.one_hot(chosen, self.vocab).float()[:, None]
        return type("Out", (), {"logits": logits})()


def test_accuracy_reads_the_likeliest_colour():
    _, tokenizer, sampler = _sampler()
    batch = sampler.batch(np.random.default_rng(2), random.Random(2), 10)
    ids, vocab = colour_answer_ids(tokenizer), len(tokenizer)
    assert lookup_accuracy(_Answering(vocab, batch.answer), batch, ids, chunk=3) == {"lookup_acc": 1.0}
    others = sorted(ids.values())
    wrong = torch.tensor([next(o for o in others if o != a) for a in batch.answer.tolist()])
    half = torch.where(torch.arange(10) < 5, batch.answer, wrong)
    assert lookup_accuracy(_Answering(vocab, half), batch, ids) == {"lookup_acc": 0.5}


def test_one_lookup_batch_is_learned():
    torch.manual_seed(0)
    model, _, sampler = _sampler()
    batch = sampler.batch(np.random.default_rng(3), random.Random(3), 8)
    losses = fit_one_batch(model.llava, lambda: torch.nn.functional.cross_entropy(
        next_token_logits(model.llava, batch), batch.answer), steps=30)
    assert losses[-1] < 0.3 * losses[0]

