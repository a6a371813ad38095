"""Attribute lookups: "What colour is the star?" answered with the one star's colour, a one-word VQA question.

A yes/no question about a shape ("Is there a star in this image?") needs the shape word's state to find the star's
patches (a shape-keyed attention) and then to tell found from not found; the captions before it only look objects up
by colour or by position ("a red" -> "star"). Asked after the captions, the yes/no question stayed near the constant
answer for shapes in two of five runs, whatever the lr or the length. "What colour is the star?" trains the same
shape-keyed lookup with a 7-way answer that is right only when the star's patches are found, the kind of question
LLaVA-1.5's VQA data asks. Beside it shape presence got further where it had stuck (68-78% against 58-63%), and
beside READ's answers it lifted their See (79.5 against 67.5 in one run), not yet to 85, so `make demo-grounding`
does not use it yet (docs/demo_grounding.md, "Why See stays at 50").

Legend: N questions, T tokens (left-padded), S the CLIP crop side.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from demo.language.config import LanguagePretrainConfig
from pipelines.data.conversation import build_prompt
from pipelines.data.image import clip_preprocess
from pipelines.data.templates import IMAGE_TOKEN
from pipelines.data.tokenize import left_pad, tokenize
from pipelines.synth.palette import COLOURS, SHAPES
from pipelines.synth.scene import SceneObject, sample_scene

LOOKUP_QUESTION = "What colour is the {shape}?"


def lookup_object(rng: random.Random, objects: Sequence[SceneObject]) -> SceneObject | None:
    """An object whose shape no other object of the scene has (so "the star" names one object); None if none."""
    counts = Counter(o.shape for o in objects)
    unique = [o for o in objects if counts[o.shape] == 1]
    return rng.choice(unique) if unique else None


def colour_answer_ids(tokenizer) -> dict[str, int]:
    """Colour name -> the one token id of its answer as the prompt spells it after "ASSISTANT:" (" red").

    Raises:
        ValueError: a colour is more than one token, or two colours share one (the answer is read from one token).
    """
    ids = {c: tokenizer(" " + c, add_special_tokens=False).input_ids for c in COLOURS}
    if any(len(v) != 1 for v in ids.values()) or len({v[0] for v in ids.values()}) != len(ids):
        raise ValueError(f"the tokenizer does not spell each colour as one token of its own: {ids}; a lookup answer "
                         "is read from one token")
    return {c: v[0] for c, v in ids.items()}


@dataclass
class LookupBatch:
    """N lookup questions, left-padded: pixels (N, 3, S, S), input_ids / attention_mask (N, T), answer (N,) the
    answer's token id."""

    pixels: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    answer: torch.Tensor

    def rows(self, start: int, stop: int) -> LookupBatch:
        return LookupBatch(*(getattr(self, f.name)[start:stop] for f in fields(LookupBatch)))


class LookupSampler:
    """Draws fresh scenes (redrawn until one shape is unique in it) and one colour lookup per scene, tokenised for the
    tiny LLaVA as a question awaiting its answer."""

    def __init__(self, cfg: LanguagePretrainConfig, tokenizer, *, num_image_tokens: int, clip_size: int) -> None:
        self.cfg, self.tokenizer = cfg, tokenizer
        self.num_image_tokens, self.clip_size = num_image_tokens, clip_size
        self.answer_ids = colour_answer_ids(tokenizer)
        self.question_ids = {shape: tokenize(build_prompt([(IMAGE_TOKEN + "\n" + LOOKUP_QUESTION.format(shape=shape),
                                                            None)]), tokenizer, num_image_tokens)[0]
                             for shape in SHAPES}
        """Shape -> the tokenised question about it (the sampler draws six questions only)."""

    def batch(self, scene_rng: np.random.Generator, rng: random.Random, n: int) -> LookupBatch:
        pixels, ids, answers = [], [], []
        while len(ids) < n:
            scene = sample_scene(scene_rng, **self.cfg.scene_options())
            target = lookup_object(rng, scene.objects)
            if target is None:
                continue
            ids.append(self.question_ids[target.shape])
            pixels.append(clip_preprocess(scene.rgb, self.clip_size))
            answers.append(self.answer_ids[target.colour])
        input_ids, attention_mask = left_pad(ids, self.tokenizer.pad_token_id)
        return LookupBatch(torch.stack(pixels), input_ids, attention_mask, torch.tensor(answers))
