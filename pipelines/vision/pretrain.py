"""Pretrain the tiny preset's CLIP tower on fresh synthetic scenes: the stand-in for CLIP's own pretraining.

READ starts from LLaVA-1.5, whose CLIP ViT-L/14 already sees colours and shapes; the tiny preset's tower starts
random, and inside READ's training it learns shapes too slowly for the false-premise decision (README "Why See stays
at 50"). Here the tower learns multi-label presence (colours, shapes, colour+shape pairs) from scenes drawn afresh
every step, then `model.vision_checkpoint` loads it into READ. It never sees a query, a mask or a dataset image.

The head reads the features LLaVA reads (`vision_feature_layer`, CLS dropped), pooled by max and mean over patches,
so what it learns is what the projector receives.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from model.build import build_read
from pipelines.vision.config import VisionPretrainConfig
from pipelines.vision.scenes import label_groups, label_names, scene_batch


class PresenceHead(nn.Module):
    """Patch features (N, P, D) -> presence logits (N, L): a linear layer on [max over P, mean over P]."""

    def __init__(self, dim: int, num_labels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * dim, num_labels)

    def forward(self, feats_NPD: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.cat([feats_NPD.amax(1), feats_NPD.mean(1)], -1))


def patch_features(tower: nn.Module, pixels_N3CC: torch.Tensor, feature_layer: int) -> torch.Tensor:
    """The tower's patch features at `feature_layer`, CLS dropped, as LLaVA's "default" strategy: (N, P, D)."""
    return tower(pixels_N3CC, output_hidden_states=True).hidden_states[feature_layer][:, 1:]


def pretrain_tower(cfg: VisionPretrainConfig, tower: nn.Module, *, feature_layer: int, clip_size: int,
                   log: Callable[[dict], None] = print) -> list[dict]:
    """Train `tower` in place for `cfg.steps` steps; returns one metrics row per evaluation.

    Each row: step, seconds, loss (train BCE), and per label group (colour, shape, pair) the held-out accuracy
    (`acc_<group>`, per label, threshold 0) beside the accuracy of always answering each label's majority
    (`majority_<group>`).
    """
    torch.manual_seed(cfg.seed)
    names, groups = label_names(pairs=cfg.pairs), label_groups(pairs=cfg.pairs)
    head = PresenceHead(tower.config.hidden_size, len(names))
    params = [*tower.parameters(), *head.parameters()]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr)
    held_out = scene_batch(np.random.default_rng([cfg.seed, 1]), cfg.eval_scenes, cfg, clip_size)
    rng = np.random.default_rng([cfg.seed, 0])
    rows, started, losses = [], time.perf_counter(), []
    tower.train()
    for step in range(1, cfg.steps + 1):
        pixels, labels = scene_batch(rng, cfg.batch_size, cfg, clip_size)
        logits = head(patch_features(tower, pixels, feature_layer))
        loss = nn.functional.binary_cross_entropy_with_logits(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % cfg.eval_every == 0 or step == cfg.steps:
            row = {"step": step, "seconds": time.perf_counter() - started, "loss": float(np.mean(losses))}
            row |= _accuracy(tower, head, held_out, groups, feature_layer)
            rows.append(row)
            log(row)
            losses = []
    tower.eval()
    return rows


@torch.no_grad()
def _accuracy(tower: nn.Module, head: PresenceHead, held_out: tuple[torch.Tensor, torch.Tensor],
              groups: dict[str, slice], feature_layer: int) -> dict[str, float]:
    pixels, labels = held_out
    predicted = head(patch_features(tower, pixels, feature_layer)) > 0
    correct = (predicted.float() == labels).float().mean(0)
    majority = torch.maximum(labels.mean(0), 1 - labels.mean(0))
    out = {}
    for group, cols in groups.items():
        out[f"acc_{group}"] = float(correct[cols].mean())
        out[f"majority_{group}"] = float(majority[cols].mean())
    return out


def pretrain_vision(cfg: VisionPretrainConfig, *, log: Callable[[dict], None] = print
                    ) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Build `cfg.model`, pretrain its vision tower; returns (the tower's state dict, metrics rows)."""
    torch.set_num_threads(cfg.num_cpus)
    model, _ = build_read(cfg.model)
    tower = model.llava.model.vision_tower
    rows = pretrain_tower(cfg, tower, feature_layer=model.llava.config.vision_feature_layer,
                          clip_size=model.clip_image_size, log=log)
    return {k: v.detach().contiguous() for k, v in tower.state_dict().items()}, rows
