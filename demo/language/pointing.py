"""Pointing prompts: READ's own segmentation conversations about fresh scenes, with the target's patches.

READ's SasP turns the similarity between the `[SEG]` state and the image-token states into SAM's points; it works
because LLaVA-1.5's states already match a query to the patches it names. The tiny preset's random LLaVA does not
(docs/demo_grounding.md, "Why See stays at 50"), and READ's losses barely train the map (only SasP's continuous
step passes a gradient). So the stand-in for LLaVA's pretraining can also teach it directly: every prompt is a training
conversation exactly as READ's loader builds it (`pipelines.data.conversation.query_conversation`: same question and
answer templates, the model's answer style), about a referring expression the synthetic datasets would write for
one object of the scene, and the target is the set of patches that object covers. The same conversations, with a
share of false premises answered by READ's corrections, also teach READ's answers (the `answers` objective): a
LLaVA that cannot answer yet meets READ's CE at about 6.8, whose gradient rewrites the LLM states, the map's included.

Legend: N prompts, T tokens (left-padded), P = G * G image tokens, S the CLIP crop side.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields

import numpy as np
import torch

from demo.language.config import LanguagePretrainConfig
from demo.pointing import patch_coverage, target_patches
from pipelines.data.conversation import query_conversation
from pipelines.data.image import clip_preprocess
from pipelines.data.tokenize import IGNORE_INDEX, left_pad, tokenize
from pipelines.synth.expressions import candidates, false_premise, margin_px, pick
from pipelines.synth.scene import sample_scene
from schemas.sample import Query


@dataclass
class PointingBatch:
    """N conversations: pixels (N, 3, S, S), input_ids / attention_mask / labels (N, T) (labels -100 off the answers),
    exists (N,) bool (False: a false premise, answered with a correction and no [SEG]), target (N, P) bool (the
    object's patches; none for a false premise), others (N, P) bool (patches of the scene's other objects), types (N,)
    the expressions' query types ("false_premise" for false premises), edits (N,) the rewritten element of a false
    premise ("attribute" | "object" | "relation"; "" for a true premise)."""

    pixels: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    exists: torch.Tensor
    target: torch.Tensor
    others: torch.Tensor
    types: list[str]
    edits: list[str]

    def true_premises(self) -> PointingBatch:
        """The rows whose object exists (each has one [SEG] and a target)."""
        keep = self.exists.nonzero(as_tuple=True)[0].tolist()
        return PointingBatch(**{f.name: _rows(getattr(self, f.name), keep) for f in fields(PointingBatch)})

    def rows(self, start: int, stop: int) -> PointingBatch:
        return PointingBatch(**{f.name: getattr(self, f.name)[start:stop] for f in fields(PointingBatch)})


def _rows(value, keep: list[int]):
    return value[keep] if isinstance(value, torch.Tensor) else [value[i] for i in keep]


def object_patches(mask_HW: np.ndarray, grid: int) -> np.ndarray:
    """Patches at least half covered by the mask, or its most covered ones for a small object: (G * G,) bool."""
    return target_patches(patch_coverage(mask_HW, grid))


class PointingSampler:
    """Draws fresh scenes and one segmentation conversation per scene, about an object some expression singles out."""

    def __init__(self, cfg: LanguagePretrainConfig, tokenizer, *, num_image_tokens: int, clip_size: int) -> None:
        self.cfg, self.tokenizer = cfg, tokenizer
        self.num_image_tokens, self.clip_size = num_image_tokens, clip_size
        self.grid = int(round(num_image_tokens ** 0.5))
        if self.grid * self.grid != num_image_tokens:
            raise ValueError(f"pointing needs a square patch grid, got {num_image_tokens} image tokens")

    def batch(self, scene_rng: np.random.Generator, rng: random.Random, n: int,
              false_premise_rate: float = 0.0) -> PointingBatch:
        """`n` conversations; about `false_premise_rate` of them ask for a false premise (one element of a true
        expression rewritten, as the FP-RefCOCO augmentation does) and are answered with READ's corrections."""
        cfg = self.cfg
        margin = margin_px(*cfg.image_size)
        pixels, ids, labels, exists, target, others, types, edits = [], [], [], [], [], [], [], []
        while len(ids) < n:
            scene = sample_scene(scene_rng, **cfg.scene_options())
            obj = scene.objects[int(scene_rng.integers(len(scene.objects)))]
            exprs = candidates(obj, scene.objects, margin)
            if not exprs:  # two identical objects side by side: nothing singles this one out
                continue
            expr = pick(scene_rng, exprs, 1)[0]  # a type first, as the synthetic datasets spread their queries
            query, edit = Query(query_id=str(len(ids)), text=expr.text(), mask=obj.mask, query_type=expr.type), ""
            if false_premise_rate and rng.random() < false_premise_rate:
                edited = false_premise(scene_rng, expr, scene.objects, margin)
                if edited is None:
                    continue
                query = Query(query_id=str(len(ids)), text=edited[0].text(), exists=False, gt_sent=expr.text(),
                              query_type="false_premise")
                edit = edited[1]
            conversation = query_conversation(query, rng=rng, meta={}, answer_style=cfg.prompt_format.answer_style)
            input_ids, answer_labels = tokenize(conversation.prompt, self.tokenizer, self.num_image_tokens)
            ids.append(input_ids)
            labels.append(answer_labels)
            pixels.append(clip_preprocess(scene.rgb, self.clip_size))
            rest = np.zeros_like(obj.mask)
            for other in scene.objects:
                if other.index != obj.index:
                    rest |= other.mask
            mine = object_patches(obj.mask, self.grid) if query.exists else np.zeros(self.grid ** 2, bool)
            exists.append(query.exists)
            target.append(mine)
            others.append((patch_coverage(rest, self.grid) >= 0.5) & ~mine)
            types.append(query.query_type)
            edits.append(edit)
        input_ids, attention_mask = left_pad(ids, self.tokenizer.pad_token_id)
        label_ids, _ = left_pad(labels, IGNORE_INDEX)
        return PointingBatch(torch.stack(pixels), input_ids, attention_mask, label_ids, torch.tensor(exists),
                             torch.from_numpy(np.stack(target)), torch.from_numpy(np.stack(others)), types, edits)
