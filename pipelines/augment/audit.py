"""Audit augmented samples against what the picture really shows: for each false-premise variant, whether it differs
from its `gt_sent` in exactly one element, whether an object edit names a category present in the image under any
of its names, and whether the variant describes an annotated object after all, judged with every object's true
attributes (`ExpressionSet.truth`), which the augmentation never sees.

The judgement reuses `grounding` with the truth as if the dataset annotated every attribute kind, so it measures
what the annotations left open (the variants kept unverified); the geometry itself is checked against hand-judged
probes (`ExpressionSet.probes`) in the tests.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

from pipelines.augment.calibration import calibrated, valid_shares
from pipelines.augment.context import CocoIndex, ImageContext
from pipelines.augment.grounding import ground
from pipelines.augment.lexicon import Lexicon
from pipelines.augment.proposal import Rewriter
from pipelines.augment.summary import AugmentCounts
from pipelines.augment.text import single_replacement
from pipelines.augment.variants import VariantPolicy, augment_sample, image_context
from schemas.sample import ShardSample

MAX_ELEMENT_WORDS = 3
"""An element (a noun phrase, an attribute word, a relation phrase) spans at most this many words."""


@dataclass(kw_only=True)
class AuditCounts:
    """What the audit found, summed over samples; `problems` lists (kind, gt_sent, variant) for each finding."""

    variants: int = 0
    by_edit: Counter = field(default_factory=Counter)
    verified: Counter = field(default_factory=Counter)
    describes: Counter = field(default_factory=Counter)
    """Variants per edit that describe an annotated object of their image."""
    present_object: int = 0
    """Object edits naming a category present in the image."""
    not_one_element: int = 0
    problems: list[tuple[str, str, str]] = field(default_factory=list)

    def merge(self, other: AuditCounts) -> AuditCounts:
        self.variants += other.variants
        self.present_object += other.present_object
        self.not_one_element += other.not_one_element
        for name in ("by_edit", "verified", "describes"):
            getattr(self, name).update(getattr(other, name))
        self.problems += other.problems
        return self

    @property
    def describes_share(self) -> float:
        return sum(self.describes.values()) / self.variants if self.variants else 0.0


def truth_context(ctx: ImageContext, truth: dict[int, frozenset[tuple[str, str]]]) -> ImageContext:
    """`ctx` with every object's true attributes as annotations of a dataset that annotates every kind."""
    objects = tuple(dataclasses.replace(o, annotated=o.annotated | truth.get(o.ann_id, frozenset()))
                    for o in ctx.objects)
    kinds: dict[str, set[str]] = {}
    for o in objects:
        for kind, value in o.annotated:
            kinds.setdefault(kind, set()).add(value)
    return dataclasses.replace(ctx, objects=objects, dataset_values={k: frozenset(v) for k, v in kinds.items()})


def audit_sample(sample: ShardSample, ctx: ImageContext, lexicon: Lexicon) -> AuditCounts:
    """Audit the false-premise variants of one augmented sample; `ctx` is its image judged with the truth
    (`truth_context`), `lexicon` names every category under every name."""
    out = AuditCounts()
    for q in sample.queries:
        if q.exists or q.edit is None or q.gt_sent is None:
            continue
        out.variants += 1
        out.by_edit[q.edit] += 1
        out.verified[q.edit] += bool(q.extra.get("verified"))
        rep = single_replacement(q.gt_sent, q.text)
        if rep is None or max(len(rep.old), len(rep.new)) > MAX_ELEMENT_WORDS:
            out.not_one_element += 1
            out.problems.append(("not_one_element", q.gt_sent, q.text))
            continue
        if q.edit == "object":
            sense = lexicon.sense_of(rep.new)
            if sense is None or sense[0] & ctx.present:
                out.present_object += 1
                out.problems.append(("object_present", q.gt_sent, q.text))
            continue
        edited = set(range(rep.new_start, rep.new_start + len(rep.new)))
        if ground(q.text, edited, ctx, q.ann_id).fits:
            out.describes[q.edit] += 1
            out.problems.append((f"describes/{q.edit}", q.gt_sent, q.text))
    return out


@dataclass(kw_only=True)
class AuditedRun:
    """One augmentation of a sample set with its audit: the job's counts, the audit's, the augmented samples."""

    counts: AugmentCounts
    audit: AuditCounts
    samples: list[ShardSample]


def augment_and_audit(samples: list[ShardSample], *, index: CocoIndex, truth: dict[int, frozenset[tuple[str, str]]],
                      rewriter: Rewriter, policy: VariantPolicy, calibrate: bool = True) -> AuditedRun:
    """Augment `samples` as the job does (calibrated on all of them unless `calibrate` is False) and audit every
    variant against `truth` (annotation id -> its true (kind, value) pairs; empty for data whose annotations say
    everything)."""
    lexicon = index.lexicon()
    if calibrate:
        policy = calibrated(policy, valid_shares(samples, index=index, lexicon=lexicon, policy=policy))
    run = AuditedRun(counts=AugmentCounts(), audit=AuditCounts(), samples=[])
    for sample in samples:
        out = augment_sample(sample, index=index, lexicon=lexicon, rewriter=rewriter, policy=policy)
        run.counts.merge(out.counts)
        run.samples.append(out.sample)
        ctx = truth_context(image_context(sample, index, lexicon), truth)
        run.audit.merge(audit_sample(out.sample, ctx, lexicon))
    return run
