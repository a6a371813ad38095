"""Pretrain the tiny preset's CLIP tower on fresh synthetic scenes: the stand-in for CLIP's own pretraining.

READ starts from LLaVA-1.5, whose CLIP ViT-L/14 patch features already say what is where; the tiny preset's tower
starts random, and inside READ's training it learns shapes too slowly for the false-premise decision
(docs/demo_grounding.md, "Why See stays at 50"). Here every patch feature learns to name the colour and the shape
of the object covering its patch (or background), from scenes drawn afresh every step; then `model.tiny.vision_checkpoint`
loads the tower into READ. It never sees a query, a mask prompt or a dataset image.

The head is linear on the features LLaVA reads (`vision_feature_layer`, CLS dropped), so what it learns is what the
projector receives, patch by patch: an LLM that attends to the patches of a colour or a shape finds it named there.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from demo.vision.config import VisionPretrainConfig
from demo.vision.scenes import BACKGROUND, COLOUR_CLASSES, SHAPE_CLASSES, SceneBatch, scene_batch
from model.build import build_read


class PatchHead(nn.Module):
    """Patch features (N, P, D) -> (colour logits (N, P, len(COLOUR_CLASSES)), shape logits (N, P, len(SHAPE_CLASSES)))."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, len(COLOUR_CLASSES) + len(SHAPE_CLASSES))

    def forward(self, feats_NPD: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.linear(feats_NPD)
        return logits[..., : len(COLOUR_CLASSES)], logits[..., len(COLOUR_CLASSES):]


def patch_features(tower: nn.Module, pixels_N3CC: torch.Tensor, feature_layer: int) -> torch.Tensor:
    """The tower's patch features at `feature_layer`, CLS dropped, as LLaVA's "default" strategy: (N, P, D)."""
    return tower(pixels_N3CC, output_hidden_states=True).hidden_states[feature_layer][:, 1:]


def pretrain_tower(cfg: VisionPretrainConfig, tower: nn.Module, *, feature_layer: int, clip_size: int,
                   log: Callable[[dict], None] = print) -> list[dict]:
    """Train `tower` in place for `cfg.steps` steps; returns one metrics row per evaluation (see `_accuracy`)."""
    torch.manual_seed(cfg.seed)
    grid = clip_size // tower.config.patch_size
    head = PatchHead(tower.config.hidden_size)
    params = [*tower.parameters(), *head.parameters()]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr)
    held_out = scene_batch(np.random.default_rng([cfg.seed, 1]), cfg.eval_scenes, cfg, clip_size, grid)
    rng = np.random.default_rng([cfg.seed, 0])
    rows, started, losses = [], time.perf_counter(), []
    tower.train()
    for step in range(1, cfg.steps + 1):
        batch = scene_batch(rng, cfg.batch_size, cfg, clip_size, grid)
        colour_NPC, shape_NPS = head(patch_features(tower, batch.pixels, feature_layer))
        loss = (nn.functional.cross_entropy(colour_NPC.flatten(0, 1), batch.colour.flatten())
                + nn.functional.cross_entropy(shape_NPS.flatten(0, 1), batch.shape.flatten()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % cfg.eval_every == 0 or step == cfg.steps:
            row = {"step": step, "seconds": time.perf_counter() - started, "loss": float(np.mean(losses))}
            row |= _accuracy(tower, head, held_out, feature_layer)
            rows.append(row)
            log(row)
            losses = []
    tower.eval()
    return rows


@torch.no_grad()
def _accuracy(tower: nn.Module, head: PatchHead, held_out: SceneBatch, feature_layer: int) -> dict[str, float]:
    """Held-out accuracy beside the accuracy of always answering the most frequent class.

    acc_patch: patches whose colour and shape are both right (majority: every patch called background);
    acc_colour / acc_shape: over the patches an object covers; acc_object_shape: per object, the shape with the
    highest probability averaged over its patches.
    """
    colour_NPC, shape_NPS = head(patch_features(tower, held_out.pixels, feature_layer))
    on_object = held_out.shape != BACKGROUND
    colour_hit = colour_NPC.argmax(-1) == held_out.colour
    shape_hit = shape_NPS.argmax(-1) == held_out.shape
    probs_NPS = shape_NPS.softmax(-1)
    object_hits, object_shapes = [], []
    for n, owners_P in enumerate(held_out.objects):
        for owner in owners_P.unique().tolist():
            if owner == BACKGROUND:
                continue
            cells = owners_P == owner
            truth = int(held_out.shape[n][cells][0])
            object_shapes.append(truth)
            object_hits.append(int(probs_NPS[n][cells].mean(0)[1:].argmax()) + 1 == truth)
    return {
        "acc_patch": float((colour_hit & shape_hit).float().mean()),
        "majority_patch": float((~on_object).float().mean()),
        "acc_colour": float(colour_hit[on_object].float().mean()),
        "majority_colour": _majority(held_out.colour[on_object]),
        "acc_shape": float(shape_hit[on_object].float().mean()),
        "majority_shape": _majority(held_out.shape[on_object]),
        "acc_object_shape": float(np.mean(object_hits)) if object_hits else float("nan"),
        "majority_object_shape": _majority(torch.tensor(object_shapes)) if object_shapes else float("nan"),
    }


def _majority(classes: torch.Tensor) -> float:
    """Share of the most frequent class in `classes` (the accuracy of always answering it)."""
    return float(torch.bincount(classes).amax() / max(1, classes.numel()))


def pretrain_vision(cfg: VisionPretrainConfig, *, log: Callable[[dict], None] = print
                    ) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Build `cfg.model`, pretrain its vision tower; returns (the tower's state dict, metrics rows)."""
    torch.set_num_threads(cfg.num_cpus)
    torch.manual_seed(cfg.seed)  # the tower's random init: a Ray worker's global RNG carries its earlier tasks' state
    model, _ = build_read(cfg.model)
    tower = model.llava.model.vision_tower
    rows = pretrain_tower(cfg, tower, feature_layer=model.llava.config.vision_feature_layer,
                          clip_size=model.clip_image_size, log=log)
    return {k: v.detach().contiguous() for k, v in tower.state_dict().items()}, rows
