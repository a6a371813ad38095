"""A Source that augments another: each loaded sample gets its false-premise variants before it is written.

It plugs the augmentation into the shared shard writer (`pipelines.shards.writer.write_shard`), which plans,
encodes, writes atomically and records completion exactly as for preprocessing. Because augmentation adds queries,
its units report `num_queries=None` (known only after loading); the reader's own accounting is still checked here.
Each unit's payload also carries the augmentation fingerprint, so the plan digest (and resume) changes with it.

What happened to each image (true queries, covered, variants per edit, candidate rejects per (edit, code)) is
stored with the sample as `extra["augment"]` (`AugmentCounts.to_json`), so the summary table is rebuilt from the
shards themselves and stays right across resumed runs.

With `calibration_images` > 0, `index` first measures each edit type's valid share on that many images spread
evenly over the split (`calibration`) and hands every unit the calibrated draw weights in its payload, so workers
draw alike and the plan digest changes with them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from pipelines.augment.calibration import Calibration, calibrated, even_sample, valid_shares
from pipelines.augment.context import CocoIndex
from pipelines.augment.lexicon import Lexicon
from pipelines.augment.proposal import Rewriter
from pipelines.augment.variants import VariantPolicy, augment_sample
from pipelines.sources.base import LoadResult, Reject, Source, WorkUnit

_TRUE_QUERIES = "_augment_input_queries"
_FINGERPRINT = "_augment"
_WEIGHTS = "_augment_draw_weights"
COUNTS_KEY = "augment"
"""`ShardSample.extra` key holding the sample's AugmentCounts JSON."""


@dataclass(kw_only=True)
class AugmentingSource:
    """Wraps `inner` (a REFER reader) so every loaded sample is augmented.

    Attributes:
        inner: the reader of the true data.
        coco: the dataset's instances.json index (present categories per image).
        rewriter: rule or LM rewriter.
        policy: edits, per_query, seed.
        fingerprint: everything else that changes the output (rewriter name, LM path, ...); goes into the plan digest.
        calibration_images: images sampled by `index` to calibrate the edit-type draw; 0 draws by the weights.
        calibration: what `index` measured (None before it ran or without calibration).
    """

    inner: Source
    coco: CocoIndex
    rewriter: Rewriter
    policy: VariantPolicy
    fingerprint: str = ""
    calibration_images: int = 0
    calibration: Calibration | None = field(default=None, repr=False)
    _lexicon: Lexicon | None = field(default=None, repr=False)

    @property
    def dataset(self) -> str:
        return self.inner.dataset

    @property
    def split(self) -> str:
        return self.inner.split

    def index(self) -> tuple[list[WorkUnit], list[Reject]]:
        units, rejects = self.inner.index()
        policy = self.policy
        if self.calibration_images > 0 and units:
            self.calibration = self._calibrate(units)
            policy = calibrated(policy, self.calibration)
        return [
            dataclasses.replace(
                u,
                num_queries=None,
                payload={**u.payload, _TRUE_QUERIES: u.num_queries, _FINGERPRINT: f"{self.policy}|{self.fingerprint}",
                         _WEIGHTS: [list(pair) for pair in policy.weights]},
            )
            for u in units
        ], rejects

    def _calibrate(self, units: list[WorkUnit]) -> Calibration:
        """Valid shares of the edit types on `calibration_images` units spread evenly over the split."""
        picked = even_sample(sorted(units, key=lambda u: u.key), self.calibration_images)
        samples = [r.sample for r in (self.inner.load(u) for u in picked) if r.sample is not None]
        return valid_shares(samples, index=self.coco, lexicon=self.lexicon, policy=self.policy)

    @property
    def lexicon(self) -> Lexicon:
        if self._lexicon is None:
            self._lexicon = self.coco.lexicon()
        return self._lexicon

    def load(self, unit: WorkUnit) -> LoadResult:
        """The inner reader's result with the sample augmented; a sample whose image is not in instances.json is
        rejected whole ("augment_no_image: ..."), and each true query left without a variant adds a 0-query reject
        ("augment_shortfall: ...") so it can be found in rejects.parquet."""
        result = self.inner.load(unit)
        expected = unit.payload.get(_TRUE_QUERIES)
        if expected is not None and result.num_queries != expected:
            raise AssertionError(
                f"{self.dataset} {unit.key}: reader accounted for {result.num_queries} queries, index said {expected}"
            )
        if result.sample is None:
            return result
        policy = self.policy
        if _WEIGHTS in unit.payload:
            policy = dataclasses.replace(policy, weights=tuple((e, float(w)) for e, w in unit.payload[_WEIGHTS]))
        try:
            outcome = augment_sample(
                result.sample, index=self.coco, lexicon=self.lexicon, rewriter=self.rewriter, policy=policy
            )
        except ValueError as err:
            reject = Reject(source=unit.source, key=unit.key, num_queries=result.sample.num_queries,
                            reason=f"augment_no_image: {err}")
            return LoadResult(rejects=[*result.rejects, reject])
        extra = {**outcome.sample.extra, COUNTS_KEY: outcome.counts.to_json()}
        sample = dataclasses.replace(outcome.sample, extra=extra)
        shortfalls = [
            Reject(source=unit.source, key=f"{unit.key}:{qid}", num_queries=0,
                   reason=f"augment_shortfall: query {qid} got {made} of {self.policy.per_query} valid false variants")
            for qid, made in outcome.shortfalls
        ]
        return LoadResult(sample=sample, rejects=[*result.rejects, *shortfalls])
