"""Augment one ShardSample: each true query keeps its place and is followed by its false-premise variants.

A variant is `Query(query_id="<orig id>:fp<k>", text=<false>, exists=False, mask=None, gt_sent=<orig text>,
edit=<kind>, query_type="false_premise")`. Randomness comes only from `query_rng(seed, sample key, query id)`, so
the output does not depend on worker count or processing order.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from random import Random

from schemas.sample import EDIT_TYPES, Query, ShardSample

from pipelines.augment.context import CocoIndex, ImageContext
from pipelines.augment.lexicon import Lexicon
from pipelines.augment.proposal import Rewriter
from pipelines.augment.summary import AugmentCounts
from pipelines.augment.text import normalise
from pipelines.augment.validation import check_candidate


@dataclass(frozen=True, kw_only=True)
class VariantPolicy:
    """How many variants of which kinds to make, and how hard to try (built from the job config)."""

    edits: tuple[str, ...] = EDIT_TYPES
    per_query: int = 1
    seed: int = 0
    allow_superlatives: bool = False
    max_tries_per_edit: int = 8


@dataclass(kw_only=True)
class AugmentOutcome:
    """The augmented sample plus what happened, for the rejects and summary tables.

    Attributes:
        sample: the input sample with false-premise queries added.
        counts: true queries, covered ones, accepted variants per edit, rejects per (edit, code).
        shortfalls: (query id, variants made) for true queries that got fewer than `per_query` variants.
    """

    sample: ShardSample
    counts: AugmentCounts = field(default_factory=AugmentCounts)
    shortfalls: list[tuple[str, int]] = field(default_factory=list)


def query_rng(seed: int, sample_key: str, query_id: str) -> Random:
    """The random stream of one query: a function of the seed and the query's identity only."""
    return Random(f"{seed}|{sample_key}|{query_id}")


def false_variants(
    text: str, ctx: ImageContext, rewriter: Rewriter, rng: Random, policy: VariantPolicy
) -> tuple[list[tuple[str, str]], Counter]:
    """Up to `policy.per_query` distinct valid (edit, false text) pairs for `text`, and the rejects by (edit, code).

    Edit kinds are tried round-robin from an `rng`-drawn start so the kinds mix; within a kind, proposals are
    validated in the rewriter's order until one passes, the kind runs out, or `max_tries_per_edit` is reached.
    """
    kinds = list(policy.edits)
    rng.shuffle(kinds)
    streams = {k: rewriter.propose(text, k, ctx, rng) for k in kinds}
    tries = Counter()
    made: list[tuple[str, str]] = []
    seen = {normalise(text)}
    rejected: Counter = Counter()
    turn = 0
    while len(made) < policy.per_query and kinds:
        kind = kinds[turn % len(kinds)]
        found = None
        while found is None and tries[kind] < policy.max_tries_per_edit:
            proposal = next(streams[kind], None)
            if proposal is None:
                break
            tries[kind] += 1
            reason = proposal.reason
            if reason is None:
                reason = check_candidate(text, proposal.text, kind, ctx, allow_superlatives=policy.allow_superlatives)
            if reason is None and normalise(proposal.text) in seen:
                reason = "duplicate"
            if reason is None:
                found = proposal.text
            else:
                rejected[(kind, reason)] += 1
        if found is None:
            kinds.remove(kind)  # exhausted: the next kind takes this turn
            continue
        made.append((kind, found))
        seen.add(normalise(found))
        turn += 1
    return made, rejected


def image_id_of(sample: ShardSample, index: CocoIndex) -> int:
    """The instances.json image id of a sample, found through its queries' ann_ids (or extra["image_id"]).

    Raises ValueError naming the sample when the image cannot be identified in instances.json.
    """
    image_ids = {index.image_of_ann[q.ann_id] for q in sample.queries if q.ann_id in index.image_of_ann}
    if not image_ids and "image_id" in sample.extra:
        image_ids = {int(sample.extra["image_id"])}
    if len(image_ids) != 1:
        raise ValueError(
            f"sample {sample.key} (source {sample.source}): its queries' ann_ids map to images {sorted(image_ids)} "
            "in instances.json, expected exactly one; augment the split the shards were made from"
        )
    return image_ids.pop()


def augment_sample(
    sample: ShardSample, *, index: CocoIndex, lexicon: Lexicon, rewriter: Rewriter, policy: VariantPolicy
) -> AugmentOutcome:
    """`sample` with up to `policy.per_query` false variants after each true query (see module docstring).

    What the image holds comes from `index` (its instances.json); raises ValueError when the image is not in it.
    """
    image_id = image_id_of(sample, index)
    true_texts = [q.text for q in sample.queries if q.exists]
    ctx = ImageContext.build(
        lexicon,
        index.image_categories.get(image_id, frozenset()),
        true_texts,
        index.image_attributes.get(image_id, frozenset()),
        index.attribute_values,
    )
    outcome = AugmentOutcome(sample=sample)
    queries: list[Query] = []
    for q in sample.queries:
        queries.append(q)
        if not q.exists:
            continue
        made, rejected = false_variants(q.text, ctx, rewriter, query_rng(policy.seed, sample.key, q.query_id), policy)
        outcome.counts.true_queries += 1
        outcome.counts.covered += bool(made)
        outcome.counts.rejected.update(rejected)
        if len(made) < policy.per_query:
            outcome.counts.shortfall += 1
            outcome.shortfalls.append((q.query_id, len(made)))
        for k, (edit, false_text) in enumerate(made):
            outcome.counts.accepted[edit] += 1
            queries.append(
                Query(
                    query_id=f"{q.query_id}:fp{k}",
                    text=false_text,
                    is_sentence=q.is_sentence,
                    exists=False,
                    gt_sent=q.text,
                    mask=None,
                    edit=edit,
                    query_type="false_premise",
                    ann_id=q.ann_id,
                    extra={"rewriter": rewriter.name},
                )
            )
    outcome.sample = dataclasses.replace(sample, queries=queries)
    return outcome
