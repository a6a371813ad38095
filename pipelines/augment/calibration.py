"""Calibrate the edit-type draw on the split itself, so that the mix over the split approaches the weights.

An expression can only get an edit type it has a valid candidate for, and those are unevenly spread: nearly every
expression has a noun to swap, fewer an attribute word, and fewer still a location word whose swap describes no other
object ("left guy" -> "right guy" is true of the other guy). Drawn by the weights alone, the scarce types come out
under their weight. So before augmenting, the set of types with a valid candidate is measured for every true
expression of an even sample of the split's images (rule rewriter, the job's validation), and draw weights d_t are
fitted so that drawing each expression's type with chance d_t / sum of d over its valid types gives, over the
sample, shares near the weights w_t: starting from w_t, each round multiplies d_t by w_t / (its share so far).
A type the data cannot supply enough of ends up taken wherever it is valid; the others share the rest by weight.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable

from pipelines.augment.context import CocoIndex
from pipelines.augment.lexicon import Lexicon
from pipelines.augment.rules import RuleRewriter
from pipelines.augment.variants import VariantPolicy, image_context, make_variants, query_rng
from schemas.sample import ShardSample

ROUNDS = 50
"""Fitting rounds (the shares settle within a few dozen)."""
MAX_RATIO = 1e4
"""Draw weights stay within this factor of the largest unsaturated one, so no type can make the others vanish."""
SATURATED = 1e-3
"""A type whose expected share is this close to the share of expressions it is valid for is taken wherever valid."""


@dataclasses.dataclass(frozen=True)
class Calibration:
    """What the sample showed: each edit type's valid share over `expressions` true expressions of `images`
    sampled images, and how many expressions had each set of valid types."""

    shares: dict[str, float]
    images: int
    expressions: int
    valid_sets: dict[frozenset[str], int] = dataclasses.field(default_factory=dict)


def valid_shares(samples: Iterable[ShardSample], *, index: CocoIndex, lexicon: Lexicon,
                 policy: VariantPolicy) -> Calibration:
    """Measure, for each edit type of `policy`, the share of the samples' true expressions that have a valid
    candidate of that type (rule rewriter, the same validation as the job). Samples whose image is not in `index`
    are skipped (the job rejects them too)."""
    rewriter, valid, sets, images, expressions = RuleRewriter(), Counter(), Counter(), 0, 0
    for sample in samples:
        try:
            ctx = image_context(sample, index, lexicon)
        except ValueError:
            continue
        images += 1
        for q in sample.queries:
            if not q.exists:
                continue
            expressions += 1
            ok = frozenset(e for e in policy.edits if _has_valid(q, sample.key, e, ctx, rewriter, policy))
            valid.update(ok)
            sets[ok] += 1
    shares = {e: valid[e] / expressions if expressions else 1.0 for e in policy.edits}
    return Calibration(shares=shares, images=images, expressions=expressions, valid_sets=dict(sets))


def _has_valid(q, key: str, edit: str, ctx, rewriter, policy: VariantPolicy) -> bool:
    alone = dataclasses.replace(policy, edits=(edit,), per_query=1)
    made, _ = make_variants(q.text, ctx, rewriter, query_rng(policy.seed, key, q.query_id), alone, target=q.ann_id)
    return bool(made)


def fitted_weights(weights: dict[str, float], valid_sets: dict[frozenset[str], int]) -> dict[str, float]:
    """Draw weights whose expected mix over `valid_sets` is nearest `weights` (normalised; module docstring). A type
    already taken (nearly) wherever it is valid stops growing, so the others still settle among themselves."""
    target = {e: w / sum(weights.values()) for e, w in weights.items()}
    total = sum(n for v, n in valid_sets.items() if v & set(target)) or 1
    most = {e: sum(n for v, n in valid_sets.items() if e in v) / total for e in target}
    draw = dict(target)
    for _ in range(ROUNDS):
        got = expected_mix(draw, valid_sets)
        saturated = {e for e in draw if target[e] > got[e] >= most[e] - SATURATED}
        for e in set(draw) - saturated:
            draw[e] *= target[e] / got[e] if got[e] else MAX_RATIO
        top = max((draw[e] for e in set(draw) - saturated), default=1.0)
        draw = {e: min(max(v / top, 1.0 / MAX_RATIO), MAX_RATIO) for e, v in draw.items()}
    norm = sum(draw.values())
    return {e: v / norm for e, v in draw.items()}


def expected_mix(draw: dict[str, float], valid_sets: dict[frozenset[str], int]) -> dict[str, float]:
    """Each type's expected share of the variants when an expression with valid types V takes t in V with chance
    draw[t] / sum(draw[V])."""
    shares, total = Counter(), 0
    for valid, n in valid_sets.items():
        options = [e for e in draw if e in valid]
        if not options:
            continue
        norm = sum(draw[e] for e in options)
        for e in options:
            shares[e] += n * draw[e] / norm
        total += n
    return {e: shares[e] / total for e in draw} if total else dict(draw)


def calibrated(policy: VariantPolicy, calibration: Calibration) -> VariantPolicy:
    """`policy` drawing the types by the weights fitted on `calibration` (module docstring)."""
    fitted = fitted_weights(policy.mix().weights, calibration.valid_sets)
    return dataclasses.replace(policy, weights=tuple((e, fitted[e]) for e in policy.edits))


def even_sample(items: list, k: int) -> list:
    """At most `k` items spread evenly over `items` (all of them when k >= len)."""
    if k >= len(items):
        return list(items)
    return [items[i * len(items) // k] for i in range(k)]
