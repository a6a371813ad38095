"""Which edit type a false premise gets: the type is chosen first, by weight, among the types the expression
supports; the edit within it second (`variants`). Another type is tried only when the chosen one has no valid
candidate.

Weights alone would not give the mix they ask for: an expression with neither attribute nor relation words can only
get an object edit, so object edits would crowd out the others ("the zebra" has one choice, "man in red shirt on
left" three). The draw therefore follows the weights corrected by what one image's variants already got: the
chance of type t is proportional to its deficit w_t * (n + 1) - c_t (n variants made in this image, c_t of type t;
the deficits sum to 1), floored at a small share of its weight, over the types the expression supports. An
image's queries are taken with the fewest choices first, so those with a choice make up for those without. All of
it happens inside one image, so the output does not depend on how images are spread over workers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from random import Random

from pipelines.augment.description import Description
from pipelines.augment.vocab import RELATION_WORDS

FLOOR = 0.05
"""A type whose deficit is spent keeps this share of its weight, so no supported type is ever ruled out."""


def supported_edits(desc: Description) -> frozenset[str]:
    """The edit types an expression offers an element for: a head noun (object), an attribute word (attribute), a
    location word or other relation phrase (relation)."""
    out = set()
    if desc.head is not None:
        out.add("object")
    if desc.attributes:
        out.add("attribute")
    if desc.places or any(w in RELATION_WORDS for w in desc.words):
        out.add("relation")
    return frozenset(out)


@dataclass
class EditMix:
    """The weights (normalised over the enabled edit types) and the running count of one image's variants."""

    weights: dict[str, float]
    counts: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        total = sum(self.weights.values())
        if not self.weights or total <= 0 or min(self.weights.values()) < 0:
            raise ValueError(f"edit weights must be >= 0 with a positive sum, got {self.weights}")
        self.weights = {k: v / total for k, v in self.weights.items()}

    def chances(self, types: list[str]) -> dict[str, float]:
        """The draw's weights for the next variant over `types` (not normalised)."""
        n = sum(self.counts.values())
        return {t: max(self.weights[t] * (n + 1) - self.counts[t], 0.0) + FLOOR * self.weights[t] for t in types}

    def order(self, supported: frozenset[str], rng: Random, *, used: frozenset[str] = frozenset()) -> list[str]:
        """Every enabled type in the order to try for the next variant: the supported ones not yet `used` by this
        query, drawn one after another by `chances`; then the supported used ones, drawn the same way; then the rest
        (they can only say why they have no candidate), in weight order."""
        enabled = list(self.weights)
        fresh = [t for t in enabled if t in supported and t not in used]
        again = [t for t in enabled if t in supported and t in used]
        rest = sorted((t for t in enabled if t not in supported), key=lambda t: -self.weights[t])
        return self._draw(fresh, rng) + self._draw(again, rng) + rest

    def _draw(self, types: list[str], rng: Random) -> list[str]:
        out, left = [], list(types)
        while left:
            chances = self.chances(left)
            pick = rng.choices(left, weights=[chances[t] for t in left])[0]
            out.append(pick)
            left.remove(pick)
        return out

    def add(self, edit: str) -> None:
        self.counts[edit] += 1
