"""Augment one ShardSample: each true query keeps its place and is followed by its false-premise variants.

A variant is `Query(query_id="<orig id>:fp<k>", text=<false>, exists=False, mask=None, gt_sent=<orig text>,
edit=<kind>, query_type="false_premise", extra={"rewriter": <name>, "verified": <bool>})`; `verified` says the
image's annotations show that the variant describes none of its objects (`validation.validate`). The edit type is
chosen first (`mix`), then the edit. Randomness comes only from `query_rng(seed, sample key, query id)` and the
sample's own content, so the output does not depend on worker count or processing order.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from random import Random

from schemas.sample import EDIT_TYPES, Query, ShardSample

from pipelines.augment.context import CocoIndex, ImageContext
from pipelines.augment.description import describe
from pipelines.augment.lexicon import Lexicon
from pipelines.augment.mix import EditMix, supported_edits
from pipelines.augment.proposal import Proposal, Rewriter
from pipelines.augment.summary import AugmentCounts
from pipelines.augment.text import normalise
from pipelines.augment.validation import validate


@dataclass(frozen=True, kw_only=True)
class VariantPolicy:
    """How many variants of which kinds to make, and how hard to try (built from the job config).

    Attributes:
        edits: the edit types allowed.
        per_query: variants per true expression.
        seed: the randomness of every query derives from it.
        allow_superlatives: accept superlative swaps (see `vocab.SUPERLATIVES`).
        max_tries_per_edit: candidates validated per (expression, edit type) before falling back to another type.
        weights: (edit, weight) pairs for the type draw (`mix`); () weighs every allowed type equally.
    """

    edits: tuple[str, ...] = EDIT_TYPES
    per_query: int = 1
    seed: int = 0
    allow_superlatives: bool = False
    max_tries_per_edit: int = 8
    weights: tuple[tuple[str, float], ...] = ()

    def mix(self) -> EditMix:
        """A fresh running mix over `edits` with `weights`."""
        given = dict(self.weights)
        return EditMix({e: float(given.get(e, 1.0)) for e in self.edits})


@dataclass(frozen=True)
class Variant:
    """One accepted false premise: its edit type, its text, and whether the annotations verify it."""

    edit: str
    text: str
    verified: bool


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
    text: str, ctx: ImageContext, rewriter: Rewriter, rng: Random, policy: VariantPolicy, *,
    target: int | None = None, mix: EditMix | None = None,
) -> tuple[list[tuple[str, str]], Counter]:
    """Up to `policy.per_query` distinct valid (edit, false text) pairs for `text`, and the rejects by (edit, code);
    `make_variants` with the verified flags dropped."""
    made, rejected = make_variants(text, ctx, rewriter, rng, policy, target=target, mix=mix)
    return [(v.edit, v.text) for v in made], rejected


def make_variants(
    text: str, ctx: ImageContext, rewriter: Rewriter, rng: Random, policy: VariantPolicy, *,
    target: int | None = None, mix: EditMix | None = None,
) -> tuple[list[Variant], Counter]:
    """Up to `policy.per_query` distinct valid variants of `text` (the annotation `target` in the image `ctx`), and
    the rejects by (edit, code).

    For each variant the edit types come in `mix.order` (a fresh mix when None): the chosen type first, the others
    only when it yields no valid candidate. Within a type, proposals are validated in the rewriter's order up to
    `max_tries_per_edit`; the first verified one is taken, else the first valid unverified one.
    """
    mix = mix if mix is not None else policy.mix()
    supported = supported_edits(describe(text, ctx.lexicon))
    streams = {k: rewriter.propose(text, k, ctx, rng) for k in policy.edits}
    tries: Counter = Counter()
    exhausted: set[str] = set()
    made: list[Variant] = []
    seen = {normalise(text)}
    rejected: Counter = Counter()
    while len(made) < policy.per_query:
        used = frozenset(v.edit for v in made)
        order = [k for k in mix.order(supported, rng, used=used) if k not in exhausted]
        found = None
        for kind in order:
            found = _first_valid(text, kind, streams[kind], tries, seen, rejected, ctx, policy, target)
            if found is not None:
                break
            exhausted.add(kind)  # nothing valid left: later variants skip it
        if found is None:
            break
        made.append(found)
        mix.add(found.edit)
        seen.add(normalise(found.text))
    return made, rejected


def _first_valid(text: str, kind: str, stream: Iterator[Proposal], tries: Counter, seen: set[str], rejected: Counter,
                 ctx: ImageContext, policy: VariantPolicy, target: int | None) -> Variant | None:
    """The next valid proposal of `stream` within the tries left for `kind`: the first verified one, else the first
    valid unverified one; every invalid proposal is counted in `rejected`."""
    fallback = None
    while tries[kind] < policy.max_tries_per_edit:
        proposal = next(stream, None)
        if proposal is None:
            break
        tries[kind] += 1
        if proposal.reason is not None:
            rejected[(kind, proposal.reason)] += 1
            continue
        verdict = validate(text, proposal.text, kind, ctx, target=target,
                           allow_superlatives=policy.allow_superlatives)
        reason = verdict.reason
        if reason is None and normalise(proposal.text) in seen:
            reason = "duplicate"
        if reason is not None:
            rejected[(kind, reason)] += 1
        elif verdict.verified:
            return Variant(kind, proposal.text, True)
        elif fallback is None:
            fallback = Variant(kind, proposal.text, False)
    return fallback


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


def image_context(sample: ShardSample, index: CocoIndex, lexicon: Lexicon) -> ImageContext:
    """What the validation knows about the sample's image: its annotations (`index`) and its true expressions.
    Raises ValueError when the image is not in `index`."""
    image_id = image_id_of(sample, index)
    true = [q for q in sample.queries if q.exists]
    return ImageContext.build(
        lexicon,
        index.image_categories.get(image_id, frozenset()),
        [q.text for q in true],
        index.image_attributes.get(image_id, frozenset()),
        index.attribute_values,
        objects=index.image_objects.get(image_id, ()),
        size=index.image_sizes.get(image_id),
        descriptions=[(q.ann_id, q.text) for q in true if q.ann_id is not None],
    )


def augment_sample(
    sample: ShardSample, *, index: CocoIndex, lexicon: Lexicon, rewriter: Rewriter, policy: VariantPolicy
) -> AugmentOutcome:
    """`sample` with up to `policy.per_query` false variants after each true query (see module docstring).

    The image's true queries share one `EditMix` and are augmented fewest supported edit types first (ties in
    sample order), so those with a choice balance the mix. What the image holds comes from `index` (its
    instances.json); raises ValueError when the image is not in it.
    """
    ctx = image_context(sample, index, lexicon)
    supported = {q.query_id: supported_edits(describe(q.text, lexicon)) for q in sample.queries if q.exists}
    order = sorted((q for q in sample.queries if q.exists), key=lambda q: len(supported[q.query_id]))
    mix = policy.mix()
    variants: dict[str, list[Variant]] = {}
    outcome = AugmentOutcome(sample=sample)
    counts = outcome.counts
    for q in order:
        made, rejected = make_variants(q.text, ctx, rewriter, query_rng(policy.seed, sample.key, q.query_id), policy,
                                       target=q.ann_id, mix=mix)
        variants[q.query_id] = made
        counts.true_queries += 1
        counts.covered += bool(made)
        counts.rejected.update(rejected)
        counts.supported.update(supported[q.query_id])
        for v in made:
            counts.accepted[v.edit] += 1
            counts.verified[v.edit] += v.verified
    queries: list[Query] = []
    for q in sample.queries:
        queries.append(q)
        if not q.exists:
            continue
        made = variants[q.query_id]
        if len(made) < policy.per_query:
            counts.shortfall += 1
            outcome.shortfalls.append((q.query_id, len(made)))
        queries += [
            Query(query_id=f"{q.query_id}:fp{k}", text=v.text, is_sentence=q.is_sentence, exists=False,
                  gt_sent=q.text, mask=None, edit=v.edit, query_type="false_premise", ann_id=q.ann_id,
                  extra={"rewriter": rewriter.name, "verified": v.verified})
            for k, v in enumerate(made)
        ]
    outcome.sample = dataclasses.replace(sample, queries=queries)
    return outcome
