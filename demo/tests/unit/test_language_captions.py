"""demo.language.captions: captions name every object left to right; their labels cover the caption only; the
accuracy counts colour and shape words; captioning trains inside pretrain_llava (test_language_pretrain.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from demo.language.captions import CaptionSampler, caption_accuracy, caption_logits, scene_caption, word_ids
from demo.tests.fixtures.language import fit_one_batch, tiny_sampler
from model.losses import next_token_ce
from pipelines.data.tokenize import IGNORE_INDEX
from pipelines.synth.scene import sample_scene

CAPTION = re.compile(r"^(a \w+ \w+)((, a \w+ \w+)* and a \w+ \w+)?\.$")


def test_captions_name_every_object_from_left_to_right():
    rng = np.random.default_rng(0)
    for _ in range(100):
        scene = sample_scene(rng, width=64, height=64, min_objects=2, max_objects=4, noise=6.0)
        text = scene_caption(scene.objects)
        assert CAPTION.match(text), text
        named = re.findall(r"a (\w+) (\w+)", text)
        ordered = sorted(scene.objects, key=lambda o: o.cx)
        assert named == [(o.colour, o.shape) for o in ordered]
    assert scene_caption(scene.objects[:1]) == f"a {scene.objects[0].colour} {scene.objects[0].shape}."
    with pytest.raises(ValueError, match="at least one object"):
        scene_caption([])


def _sampler():
    return tiny_sampler(CaptionSampler, "caption")


def test_labels_cover_the_caption_and_its_end_only():
    model, tokenizer, sampler = _sampler()
    batch = sampler.batch(np.random.default_rng(1), 6)
    assert batch.pixels.shape == (6, 3, model.clip_image_size, model.clip_image_size)
    assert ((batch.input_ids == model.llava.config.image_token_id).sum(1) == model.num_image_tokens).all()
    for ids_T, labels_T in zip(batch.input_ids, batch.labels):
        kept = labels_T != IGNORE_INDEX
        assert torch.equal(ids_T[kept], labels_T[kept])
        text = tokenizer.decode(labels_T[kept]).strip()
        assert text.endswith("</s>") and CAPTION.match(text.removesuffix("</s>").strip()), text


class _Oracle(torch.nn.Module):
    """Predicts each next token by reading it from the input (teacher forcing): right everywhere, or wrong on the
    `wrong` ids."""

    def __init__(self, vocab: int, wrong: torch.Tensor | None = None) -> None:
        super().__init__()
        self.vocab, self.wrong = vocab, wrong

    def forward(self, *, input_ids, **_) -> object:
        nxt = input_ids[:, 1:]
        if self.wrong is not None:
            nxt = torch.where(torch.isin(nxt, self.wrong), (nxt + 1) % self.vocab, nxt)
        logits = torch.nn.functional.one_hot(torch.cat([nxt, nxt[:, :1]], 1), self.vocab).float()
        return type("Out", (), {"logits": logits})()


def test_accuracy_counts_colour_and_shape_words_apart():
    _, tokenizer, sampler = _sampler()
    batch = sampler.batch(np.random.default_rng(2), 5)
    words, vocab = word_ids(tokenizer), len(tokenizer)
    assert not set(words["colour"].tolist()) & set(words["shape"].tolist())
    assert caption_accuracy(_Oracle(vocab), batch, words) == {"caption_colour": 1.0,
                                                                             "caption_shape": 1.0}
    wrong_shapes = _Oracle(vocab, wrong=words["shape"])
    assert caption_accuracy(wrong_shapes, batch, words, chunk=2) == {"caption_colour": 1.0, "caption_shape": 0.0}


def test_one_caption_batch_is_learned():
    torch.manual_seed(0)
    model, _, sampler = _sampler()
    batch = sampler.batch(np.random.default_rng(3), 8)
    losses = fit_one_batch(model.llava, lambda: next_token_ce(caption_logits(model.llava, batch), batch.labels),
                           steps=30)
    assert losses[-1] < 0.3 * losses[0]

