"""READ losses against hand-written formulas."""

import math

import torch
import torch.nn.functional as F

from model.losses import mask_losses, next_token_ce


def _bce_by_hand(logit: float, target: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_bce_and_dice_match_the_formula_and_are_normalised_by_mask_count():
    torch.manual_seed(0)
    logits = [torch.randn(2, 3, 4), torch.randn(0, 5, 5), torch.randn(1, 2, 2)]
    targets = [(torch.rand(2, 3, 4) > 0.5).float(), torch.zeros(0, 5, 5), torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])]
    bce, dice = mask_losses(logits, targets)
    masks = [(l, t) for ls, ts in zip(logits, targets) for l, t in zip(ls, ts)]
    assert len(masks) == 3
    bce_ref = sum(
        sum(_bce_by_hand(float(a), float(b)) for a, b in zip(l.flatten(), t.flatten())) / l.numel() for l, t in masks
    ) / 3
    dice_ref = 0.0
    for l, t in masks:
        p = [1 / (1 + math.exp(-float(v))) for v in l.flatten()]
        tt = [float(v) for v in t.flatten()]
        num = 2 * sum(a / 1000 * b for a, b in zip(p, tt)) + 1e-6
        den = sum(a / 1000 for a in p) + sum(b / 1000 for b in tt) + 1e-6
        dice_ref += 1 - num / den
    dice_ref /= 3
    assert abs(float(bce) - bce_ref) < 1e-5
    assert abs(float(dice) - dice_ref) < 1e-5


def test_dice_is_zero_for_a_perfect_confident_prediction():
    target = torch.zeros(1, 8, 8)
    target[0, 2:5, 3:6] = 1
    _, dice = mask_losses([(target * 2 - 1) * 50], [target])
    assert float(dice) < 1e-3


def test_no_masks_gives_zero_mask_losses():
    bce, dice = mask_losses([torch.zeros(0, 4, 4)], [torch.zeros(0, 4, 4)])
    assert float(bce) == 0 and float(dice) == 0


def test_ce_only_on_labelled_positions():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.full((2, 5), -100)
    labels[0, 3], labels[1, 1], labels[1, 4] = 2, 6, 0
    ce = next_token_ce(logits, labels)
    ref = (F.cross_entropy(logits[0, 2:3], labels[0, 3:4], reduction="sum")
           + F.cross_entropy(logits[1, 0:1], labels[1, 1:2], reduction="sum")
           + F.cross_entropy(logits[1, 3:4], labels[1, 4:5], reduction="sum")) / 3
    torch.testing.assert_close(ce, ref)
    assert float(next_token_ce(logits, torch.full((2, 5), -100))) == 0
