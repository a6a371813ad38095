"""Scene captions: the stand-in for LLaVA's first stage (feature alignment on image-caption pairs).

LLaVA-1.5 is trained on image captions before it learns to follow instructions (its projector only: its LLM,
Vicuna, is pretrained already). The tiny LLaVA's LLM is random, so here it learns from captions too (the tower as
well unless frozen): "Describe the shapes in this image." answered with the scene's objects from left to right, "a
red star, a blue circle and a green square.". Predicting "star" after "red" is a one-step lookup (the colour word's
state finds the red patches and reads their shape), a step a yes/no question needs too; on the frozen tower,
presence questions asked after captioning are learned in hundreds of steps instead of thousands
(docs/demo_grounding.md, "Why See stays at 50").

Legend: N captions, T tokens (left-padded), V vocabulary, S the CLIP crop side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import nn

from demo.language.config import LanguagePretrainConfig
from pipelines.data.conversation import build_prompt
from pipelines.data.image import clip_preprocess
from pipelines.data.templates import IMAGE_TOKEN
from pipelines.data.tokenize import IGNORE_INDEX, left_pad, tokenize
from pipelines.synth.palette import COLOURS, SHAPES
from pipelines.synth.scene import SceneObject, sample_scene

CAPTION_QUESTION = "Describe the shapes in this image."


def scene_caption(objects: Sequence[SceneObject]) -> str:
    """The scene's objects from left to right (mask centres), e.g. "a red star, a blue circle and a green square."."""
    if not objects:
        raise ValueError("a scene caption needs at least one object")
    parts = [f"a {o.colour} {o.shape}" for o in sorted(objects, key=lambda o: (o.cx, o.cy))]
    head = ", ".join(parts[:-1])
    return (f"{head} and {parts[-1]}" if head else parts[-1]) + "."


@dataclass
class CaptionBatch:
    """N captioned scenes: pixels (N, 3, S, S), input_ids / attention_mask / labels (N, T) (labels -100 off the
    caption)."""

    pixels: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor

    def rows(self, start: int, stop: int) -> CaptionBatch:
        return CaptionBatch(*(getattr(self, f.name)[start:stop] for f in fields(CaptionBatch)))


class CaptionSampler:
    """Draws fresh scenes (as `cfg` sets them: image_size, min/max_objects, noise) and their captions, tokenised as
    one-turn LLaVA conversations."""

    def __init__(self, cfg: LanguagePretrainConfig, tokenizer, *, num_image_tokens: int, clip_size: int) -> None:
        self.cfg, self.tokenizer = cfg, tokenizer
        self.num_image_tokens, self.clip_size = num_image_tokens, clip_size

    def batch(self, scene_rng: np.random.Generator, n: int) -> CaptionBatch:
        pixels, ids, labels = [], [], []
        for _ in range(n):
            scene = sample_scene(scene_rng, **self.cfg.scene_options())
            prompt = build_prompt([(IMAGE_TOKEN + "\n" + CAPTION_QUESTION, scene_caption(scene.objects))])
            input_ids, answer_labels = tokenize(prompt, self.tokenizer, self.num_image_tokens)
            ids.append(input_ids)
            labels.append(answer_labels)
            pixels.append(clip_preprocess(scene.rgb, self.clip_size))
        input_ids, attention_mask = left_pad(ids, self.tokenizer.pad_token_id)
        label_ids, _ = left_pad(labels, IGNORE_INDEX)
        return CaptionBatch(torch.stack(pixels), input_ids, attention_mask, label_ids)


def caption_logits(llava: nn.Module, batch: CaptionBatch) -> torch.Tensor:
    """Next-token logits over every position: (N, T, V)."""
    return llava(input_ids=batch.input_ids, pixel_values=batch.pixels, attention_mask=batch.attention_mask,
                 use_cache=False).logits


def word_ids(tokenizer) -> dict[str, torch.Tensor]:
    """The last token ids of the colour words and of the shape words, as a caption spells them (after a space)."""
    def last(word: str) -> int:
        return tokenizer(" " + word, add_special_tokens=False).input_ids[-1]
    return {"colour": torch.tensor(sorted({last(c) for c in COLOURS})),
            "shape": torch.tensor(sorted({last(s) for s in SHAPES}))}


@torch.no_grad()
def caption_accuracy(llava: nn.Module, held_out: CaptionBatch, words: dict[str, torch.Tensor], chunk: int = 64
                     ) -> dict[str, float]:
    """Teacher-forced accuracy of the held-out captions' colour words (`caption_colour`: which object comes next,
    left to right) and shape words (`caption_shape`: the shape of the object whose colour was just named)."""
    hits: dict[str, list[torch.Tensor]] = {name: [] for name in words}
    for start in range(0, len(held_out.input_ids), chunk):
        part = held_out.rows(start, start + chunk)
        predicted_NT = caption_logits(llava, part)[:, :-1].argmax(-1)
        target_NT = part.labels[:, 1:]
        for name, ids in words.items():
            where = torch.isin(target_NT, ids)
            hits[name].append(predicted_NT[where] == target_NT[where])
    return {f"caption_{name}": float(torch.cat(h).float().mean()) for name, h in hits.items()}
