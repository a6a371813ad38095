"""READ losses: next-token CE over assistant tokens, and per-mask BCE and Dice normalised by the mask count.

Legend: C conversations, T tokens, V vocabulary, N masks, H x W original image size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100
DICE_SCALE = 1000.0
"""LISA's numerical scale: probabilities and targets are divided by it before the Dice sums."""
DICE_EPS = 1e-6


def next_token_ce(logits_CTV: torch.Tensor, labels_CT: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over positions whose label is not -100 (0 when there are none).

    Position t predicts label t+1. Computed in float32.
    """
    logits = logits_CTV[:, :-1].float().reshape(-1, logits_CTV.shape[-1])
    targets = labels_CT[:, 1:].reshape(-1)
    if not bool((targets != IGNORE_INDEX).any()):
        return logits.sum() * 0.0  # keeps the graph (and DeepSpeed's grad hooks) connected
    return F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX)


def mask_bce_sum(logits_NHW: torch.Tensor, targets_NHW: torch.Tensor) -> torch.Tensor:
    """Sum over masks of the per-pixel BCE-with-logits mean of each mask. (N, H, W) x2 -> 0-dim float32."""
    per_pixel = F.binary_cross_entropy_with_logits(logits_NHW.float(), targets_NHW.float(), reduction="none")
    return per_pixel.flatten(1).mean(1).sum()


def mask_dice_sum(logits_NHW: torch.Tensor, targets_NHW: torch.Tensor) -> torch.Tensor:
    """Sum over masks of `1 - (2*sum(p*t) + eps) / (sum(p) + sum(t) + eps)`, with p = sigmoid(logits)/1000 and
    t = targets/1000 in the denominator and p*targets in the numerator (LISA's scaling, so the ratio is the usual
    Dice with a smoothing term of eps*1000 in unscaled units). (N, H, W) x2 -> 0-dim float32.
    """
    p = logits_NHW.float().sigmoid().flatten(1) / DICE_SCALE
    t = targets_NHW.float().flatten(1)
    numerator = 2 * (p * t).sum(-1)
    denominator = p.sum(-1) + (t / DICE_SCALE).sum(-1)
    return (1 - (numerator + DICE_EPS) / (denominator + DICE_EPS)).sum()


def mask_losses(
    mask_logits: list[torch.Tensor], gt_masks: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(BCE, Dice), each summed over all masks of the batch and divided by the number of masks.

    Args:
        mask_logits: per conversation (N_c, H, W) predicted logits at original resolution.
        gt_masks: per conversation (N_c, H, W) {0, 1} targets; N_c may be 0.

    Returns:
        Two 0-dim float32 tensors; both 0 when the batch has no mask (still attached to the graph when possible).
    """
    num_masks = sum(int(m.shape[0]) for m in gt_masks)
    anchor = next((m for m in mask_logits if m.numel()), None)
    if num_masks == 0:
        zero = anchor.float().sum() * 0.0 if anchor is not None else torch.zeros(())
        return zero, zero
    bce = sum(mask_bce_sum(p, t) for p, t in zip(mask_logits, gt_masks) if t.shape[0])
    dice = sum(mask_dice_sum(p, t) for p, t in zip(mask_logits, gt_masks) if t.shape[0])
    return bce / num_masks, dice / num_masks

