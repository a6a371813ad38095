"""The augmentation summary table (`summary.parquet`): coverage, the edit mix against its weights, verified shares
and reject reasons per edit type.

One row per (dataset, split, edit, outcome, reason); `share` is the row's fraction of what its comment names:
    outcome "true_queries"  edit "", reason "": true expressions seen                        share 1
    outcome "covered"       edit "", reason "": true expressions with >= 1 valid variant     share: of true_queries
    outcome "shortfall"     edit "", reason "": true expressions with < `per_query` variants  share: of true_queries
    outcome "variants"      edit "", reason "": false variants written                        share 1
    outcome "verified"      edit "", reason "": variants the annotations verify               share: of accepted
    outcome "unverified"    edit "", reason "": variants the annotations cannot decide         share: of accepted
    outcome "supported"     per edit: true expressions offering an element of that type      share: of true_queries
    outcome "weight"        per edit: count 0; share = the configured weight (normalised)
    outcome "valid_share"   per edit, with calibration: expressions measured; share = those with a valid candidate
                            of that type (pipelines.augment.calibration)
    outcome "accepted"      per edit with variants: variants of that type                     share: of all variants
    outcome "verified"      per edit with variants: those the annotations verify             share: of the type's
    outcome "unverified"    per edit with variants: those kept unverified                     share: of the type's
    outcome "rejected"      per (edit, reject code): candidates rejected (validation.REJECT_CODES) share: of the
                            type's rejects
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa

from schemas.arrow import validate_table, versioned
from schemas.sample import ShardSample

AUGMENT_SUMMARY_SCHEMA = versioned(
    pa.schema(
        [
            ("dataset", pa.string()),
            ("split", pa.string()),
            ("rewriter", pa.string()),
            ("edit", pa.string()),
            ("outcome", pa.string()),
            ("reason", pa.string()),
            ("count", pa.int64()),
            ("share", pa.float64()),
        ]
    ),
    version=2,
)


class Calibrated(Protocol):
    """What the summary reads of a `calibration.Calibration`."""

    shares: dict[str, float]
    expressions: int


@dataclass(kw_only=True)
class AugmentCounts:
    """Counts that add up across samples and workers (`merge`)."""

    true_queries: int = 0
    covered: int = 0
    shortfall: int = 0
    accepted: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    verified: Counter = field(default_factory=Counter)
    """Accepted variants per edit that the annotations verify."""
    supported: Counter = field(default_factory=Counter)
    """True expressions per edit type that offer an element of that type."""

    def merge(self, other: AugmentCounts) -> AugmentCounts:
        self.true_queries += other.true_queries
        self.covered += other.covered
        self.shortfall += other.shortfall
        for name in ("accepted", "rejected", "verified", "supported"):
            getattr(self, name).update(getattr(other, name))
        return self

    def to_json(self) -> dict:
        """JSON-able form (Counter keys flattened to "edit/reason")."""
        return {
            "true_queries": self.true_queries,
            "covered": self.covered,
            "shortfall": self.shortfall,
            "accepted": dict(self.accepted),
            "rejected": {f"{e}/{r}": n for (e, r), n in self.rejected.items()},
            "verified": dict(self.verified),
            "supported": dict(self.supported),
        }

    @classmethod
    def from_json(cls, data: dict) -> AugmentCounts:
        return cls(
            true_queries=data["true_queries"],
            covered=data["covered"],
            shortfall=data["shortfall"],
            accepted=Counter(data["accepted"]),
            rejected=Counter({tuple(k.split("/", 1)): n for k, n in data["rejected"].items()}),
            verified=Counter(data.get("verified", {})),
            supported=Counter(data.get("supported", {})),
        )

    @property
    def coverage(self) -> float:
        """Share of true expressions with at least one valid false variant (1.0 when there are none)."""
        return self.covered / self.true_queries if self.true_queries else 1.0

    @property
    def variants(self) -> int:
        return sum(self.accepted.values())

    def mix(self) -> dict[str, float]:
        """Edit type -> its share of the variants."""
        return {e: n / self.variants for e, n in sorted(self.accepted.items())} if self.variants else {}

    @property
    def verified_share(self) -> float:
        """Share of the variants the annotations verify (1.0 when there are none)."""
        return sum(self.verified.values()) / self.variants if self.variants else 1.0

    def line(self, weights: dict[str, float]) -> str:
        """One line: coverage, the mix against `weights`, the verified share (overall and per edit type)."""
        total = sum(weights.values()) or 1.0
        mix = self.mix()
        parts = ", ".join(f"{e} {100 * mix.get(e, 0.0):.1f}% (weight {100 * w / total:.0f}%)"
                          for e, w in weights.items())
        per_edit = ", ".join(f"{e} {100 * self.verified[e] / n:.0f}%" for e, n in sorted(self.accepted.items()) if n)
        return (f"coverage {100 * self.coverage:.1f}% ({self.covered} of {self.true_queries} true expressions); "
                f"mix {parts}; verified {100 * self.verified_share:.1f}% of {self.variants} variants ({per_edit})")


def _share(n: int, of: int) -> float:
    return n / of if of else 0.0


def summary_table(counts: AugmentCounts, *, dataset: str, split: str, rewriter: str,
                  weights: dict[str, float] | None = None, calibration: Calibrated | None = None) -> pa.Table:
    """The summary rows (module docstring), validated against AUGMENT_SUMMARY_SCHEMA. `weights` are the edit
    weights the job ran with (None: equal over the edit types that occur); `calibration` what the job measured
    before augmenting (`calibration.Calibration`), if it did."""
    c, variants = counts, counts.variants
    weights = weights or dict.fromkeys(sorted(set(c.accepted) | set(c.supported)), 1.0)
    total_weight = sum(weights.values()) or 1.0
    verified = sum(c.verified.values())
    rows = [("", "true_queries", "", c.true_queries, 1.0),
            ("", "covered", "", c.covered, _share(c.covered, c.true_queries)),
            ("", "shortfall", "", c.shortfall, _share(c.shortfall, c.true_queries)),
            ("", "variants", "", variants, 1.0),
            ("", "verified", "", verified, _share(verified, variants)),
            ("", "unverified", "", variants - verified, _share(variants - verified, variants))]
    for edit in sorted(set(weights) | set(c.accepted)):
        n = c.accepted[edit]
        rows += [(edit, "supported", "", c.supported[edit], _share(c.supported[edit], c.true_queries)),
                 (edit, "weight", "", 0, weights.get(edit, 0.0) / total_weight)]
        if calibration is not None and edit in calibration.shares:
            rows.append((edit, "valid_share", "", calibration.expressions, calibration.shares[edit]))
        if n:
            rows += [(edit, "accepted", "", n, _share(n, variants)),
                     (edit, "verified", "", c.verified[edit], _share(c.verified[edit], n)),
                     (edit, "unverified", "", n - c.verified[edit], _share(n - c.verified[edit], n))]
    rejects = Counter()
    for (edit, _), n in c.rejected.items():
        rejects[edit] += n
    rows += [(edit, "rejected", reason, n, _share(n, rejects[edit]))
             for (edit, reason), n in sorted(c.rejected.items())]
    columns = ("edit", "outcome", "reason", "count", "share")
    table = pa.table({"dataset": [dataset] * len(rows), "split": [split] * len(rows),
                      "rewriter": [rewriter] * len(rows), **{k: [r[i] for r in rows] for i, k in enumerate(columns)}})
    return validate_table(table, AUGMENT_SUMMARY_SCHEMA, name="augment summary.parquet")


def counts_of(metadata: Iterable[dict], *, key: str = "augment") -> AugmentCounts:
    """Sum of the per-sample counts in samples' metadata JSON (`readback.iter_metadata`)."""
    total = AugmentCounts()
    for meta in metadata:
        if key in meta["extra"]:
            total.merge(AugmentCounts.from_json(meta["extra"][key]))
    return total


def counting(samples: Iterable[ShardSample], counts: AugmentCounts, *, key: str = "augment") -> Iterator[ShardSample]:
    """Yield `samples` unchanged while merging each one's `extra[key]` counts into `counts` (one pass, any size)."""
    for sample in samples:
        if key in sample.extra:
            counts.merge(AugmentCounts.from_json(sample.extra[key]))
        yield sample
