"""How often a training image is asked about what it does NOT show: READ's premise modes, drawn once per image.

READ draws one mode per sample and asks every conversation of that sample in it:
- semantic segmentation (`SemSegDataset`): true premise / denial / correction with weights 0.85 / 0.07 / 0.08; a
  false premise names a class of the dataset that is absent from the image (a correction also names a present one);
- ReasonSeg (`ReasonSegDataset`): false-premise mode with probability 0.15, asking the JSON's `false_premise_QA`
  questions and training on each entry's own answer. A sample without such entries never enters that mode.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SEMSEG_MODES = ("true", "denial", "correction")
"""Modes of a semantic-segmentation sample, in the order of `PremisePolicy.semseg_weights`."""


@dataclass(frozen=True, kw_only=True)
class PremisePolicy:
    """The premise-mode rates of the training conversations (from DataConfig)."""

    semseg_weights: tuple[float, float, float] = (0.85, 0.07, 0.08)
    """Relative weights of true premise / denial / correction per semantic-segmentation sample (READ's)."""
    reasonseg_false_premise_share: float = 0.15
    """Probability that a ReasonSeg sample holding `false_premise_QA` entries is trained on them (READ's 0.15)."""

    def __post_init__(self) -> None:
        if len(self.semseg_weights) != 3 or min(self.semseg_weights) < 0 or sum(self.semseg_weights) <= 0:
            raise ValueError("data.semseg_premise_weights must be 3 weights >= 0 (true, denial, correction) with a "
                             f"positive sum, got {list(self.semseg_weights)}")
        if not 0.0 <= self.reasonseg_false_premise_share <= 1.0:
            raise ValueError("data.reasonseg_false_premise_share must be in [0, 1], got "
                             f"{self.reasonseg_false_premise_share}")

    def semseg_mode(self, rng: random.Random) -> str:
        """One of SEMSEG_MODES for one semantic-segmentation sample."""
        return rng.choices(SEMSEG_MODES, weights=self.semseg_weights)[0]

    def reasonseg_false_premise(self, rng: random.Random) -> bool:
        """Whether one ReasonSeg sample with false-premise entries is trained on them."""
        return rng.random() < self.reasonseg_false_premise_share
