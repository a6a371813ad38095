"""Augmentation benchmark: rule-rewriting throughput next to shard writing, and the issue-35 goals on two data sets.

Data sets:
- synthetic: a synthetic RefCOCO train split (pipelines.synth; 640x480 JPEGs, as the demo uses). Phases, timed apart
  on one process: load (REFER reader: image read + mask decode), calibration (valid share of each edit type,
  pipelines.augment.calibration), rule rewriting (`augment_sample` of every loaded sample), shard writing
  (`write_shards`: encode + tar). Its variants are judged by the synthetic generator's own resolver
  (`pipelines.synth.expressions.parse` + `resolve`, which knows every drawn object), independently of the
  augmentation's grounding.
- realistic: the hand-written RefCOCO-style set tests/data/refcoco_style_expressions.json (boxes only in its
  instances.json), judged against its `truth` (pipelines.augment.audit), for two seeds.
Goals: rewriting < 10% of writing time; >= 95% of true expressions get a valid variant; each edit type >= 20% of
the variants; no object edit names a category present in the image; <= 2% of variants describe an annotated object
of their image; every variant differs from its gt_sent in one element; same seed, same bytes.
Usage: python -m bench.augment [--quick]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from pipelines.augment.audit import AuditedRun, augment_and_audit
from pipelines.augment.calibration import calibrated, valid_shares
from pipelines.augment.context import CocoIndex
from pipelines.augment.description import describe
from pipelines.augment.expression_set import ExpressionSet
from pipelines.augment.rules import RuleRewriter
from pipelines.augment.text import single_replacement, words_of
from pipelines.augment.variants import VariantPolicy, augment_sample
from pipelines.shards import write_shards
from pipelines.sources.refer import ReferSource
from pipelines.synth import SynthConfig, write_all
from pipelines.synth.expressions import margin_px, parse, resolve
from pipelines.synth.refer import FIRST_IMAGE_ID, pool_scene
from schemas.sample import ShardSample, encode

REALISTIC = Path(__file__).resolve().parents[1] / "tests" / "data" / "refcoco_style_expressions.json"
SEEDS = (0, 1)


def _row(metric: str, value: float, unit: str, goal: str = "") -> dict:
    return {"bench": "augment", "metric": metric, "value": float(value), "unit": unit, "goal": goal}


def goal_rows(name: str, run: AuditedRun, describes: int, same_bytes: bool) -> list[dict]:
    """The goal figures of one augmented data set; `describes` counts variants true of an object of their image."""
    c, a = run.counts, run.audit
    rows = [_row(f"{name}: true expressions with a valid variant", 100 * c.coverage, "%", ">= 95")]
    rows += [_row(f"{name}: {edit} edits", 100 * c.mix().get(edit, 0.0), "% of variants", ">= 20")
             for edit in ("object", "attribute", "relation")]
    rows += [_row(f"{name}: variants verified by the annotations", 100 * c.verified_share, "%"),
             _row(f"{name}: variants describing an object of the image", 100 * describes / max(c.variants, 1), "%",
                  "<= 2"),
             _row(f"{name}: object edits naming a present category", a.present_object, "variants", "0"),
             _row(f"{name}: variants not one element away from gt_sent", a.not_one_element, "variants", "0"),
             _row(f"{name}: same seed, same bytes", float(same_bytes), "1 = yes", "1")]
    return rows


def _clear_caches() -> None:
    describe.cache_clear()
    words_of.cache_clear()
    single_replacement.cache_clear()


def _bytes(samples: list[ShardSample]) -> list[bytes]:
    return [encode(s)["json"] for s in samples]


def synthetic_judge(samples: list[ShardSample], cfg: SynthConfig) -> Counter:
    """The synthetic generator's verdict on every variant: "false", "describes", "vague" or "unparsed"."""
    verdicts: Counter = Counter()
    for s in samples:
        scene = pool_scene(cfg, int(s.extra["image_id"]) - FIRST_IMAGE_ID)
        margin = margin_px(scene.width, scene.height)
        for q in s.queries:
            if q.exists:
                continue
            expr = parse(q.text)
            found = None if expr is None else resolve(expr, scene.objects, margin)
            verdict = "unparsed" if expr is None else "vague" if found is None else "describes" if found else "false"
            verdicts[verdict] += 1
    return verdicts


def synthetic_rows(quick: bool) -> list[dict]:
    num_images = 24 if quick else 120
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "raw"
        cfg = SynthConfig(out=str(root), datasets=["refcoco"], image_size=[640, 480], num_refcoco_train=num_images,
                          num_refcoco_val=0, num_refcoco_testA=0, num_refcoco_testB=0, max_refs_per_image=3)
        write_all(cfg)
        source = ReferSource(dataset="refcoco", root=str(root), split="train")
        t0 = time.perf_counter()
        units, _ = source.index()
        samples = [s for s in (source.load(u).sample for u in units) if s is not None]
        t_load = time.perf_counter() - t0

        coco = CocoIndex.from_instances(json.loads((root / "refer_seg/refcoco/instances.json").read_text()))
        lexicon, rewriter = coco.lexicon(), RuleRewriter()
        t0 = time.perf_counter()
        policy = calibrated(VariantPolicy(seed=0), valid_shares(samples, index=coco, lexicon=lexicon,
                                                                policy=VariantPolicy(seed=0)))
        t_calibrate = time.perf_counter() - t0
        _clear_caches()  # time the rewriting as a worker sees it: readings of these texts not yet cached
        t0 = time.perf_counter()
        augmented = [augment_sample(s, index=coco, lexicon=lexicon, rewriter=rewriter, policy=policy).sample
                     for s in samples]
        t_rewrite = time.perf_counter() - t0
        t0 = time.perf_counter()
        written = write_shards(augmented, str(Path(tmp) / "out"), shard_max_samples=50, shard_max_bytes=1 << 30)
        t_write = time.perf_counter() - t0

        rows = []
        for seed in SEEDS:
            run = augment_and_audit(samples, index=coco, truth={}, rewriter=rewriter, policy=VariantPolicy(seed=seed))
            again = augment_and_audit(samples, index=coco, truth={}, rewriter=rewriter, policy=VariantPolicy(seed=seed))
            verdicts = synthetic_judge(run.samples, cfg)
            rows += goal_rows(f"synthetic seed {seed}", run, verdicts["describes"],
                              _bytes(run.samples) == _bytes(again.samples))
            rows.append(_row(f"synthetic seed {seed}: variants the generator calls vague (ambiguous anchor)",
                             100 * verdicts["vague"] / max(run.counts.variants, 1), "%"))
    true_q = run.counts.true_queries
    return [
        _row("true queries (synthetic refcoco train)", true_q, "queries"),
        _row("calibration (valid share of each edit type)", true_q / t_calibrate, "true queries/s"),
        _row("rule rewriting", true_q / t_rewrite, "true queries/s"),
        _row("shard writing (encode + tar)", true_q / t_write, "true queries/s"),
        _row("REFER load (read + mask decode)", true_q / t_load, "true queries/s"),
        _row("rewriting time / shard-writing time", 100 * t_rewrite / t_write, "%", "< 10"),
        _row("output queries written", written.queries, "queries"),
        *rows,
    ]


def realistic_rows() -> list[dict]:
    data = ExpressionSet.load(REALISTIC)
    index = CocoIndex.from_instances(data.instances())
    rows = [_row("true queries (hand-written RefCOCO-style set)", len(data.expressions()), "queries")]
    for seed in SEEDS:
        run, again = (augment_and_audit(data.samples(), index=index, truth=data.truth(), rewriter=RuleRewriter(),
                                        policy=VariantPolicy(seed=seed)) for _ in range(2))
        rows += goal_rows(f"realistic seed {seed}", run, sum(run.audit.describes.values()),
                          _bytes(run.samples) == _bytes(again.samples))
    return rows


def run(quick: bool) -> list[dict]:
    return synthetic_rows(quick) + realistic_rows()


if __name__ == "__main__":
    for row in run("--quick" in sys.argv[1:]):
        print(f"{row['metric']:<75} {row['value']:>12.3f} {row['unit']:<16} {row['goal']}")
