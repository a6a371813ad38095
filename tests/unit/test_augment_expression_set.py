"""The rule rewriter on hand-written RefCOCO-style expressions (tests/data/refcoco_style_expressions.json): the
issue's goals, measured against what the invented pictures really show, and the hand-judged probes."""

from __future__ import annotations

import pathlib
from collections import Counter

import pytest

from pipelines.augment.audit import augment_and_audit
from pipelines.augment.context import CocoIndex
from pipelines.augment.description import describe
from pipelines.augment.expression_set import ExpressionSet
from pipelines.augment.grounding import ground
from pipelines.augment.mix import supported_edits
from pipelines.augment.rules import RuleRewriter
from pipelines.augment.text import single_replacement
from pipelines.augment.validation import validate
from pipelines.augment.variants import VariantPolicy, image_context
from schemas.sample import encode

SET = ExpressionSet.load(pathlib.Path(__file__).parents[1] / "data" / "refcoco_style_expressions.json")
INDEX = CocoIndex.from_instances(SET.instances())
LEXICON = INDEX.lexicon()


def test_the_set_is_realistic_enough():
    expressions = SET.expressions()
    assert len(expressions) >= 150
    assert len({o["category"] for im in SET.images for o in im["objects"]}) >= 20
    assert all(len(im["objects"]) >= 2 for im in SET.images)  # several annotated objects per image
    offered = Counter(e for _, _, text in expressions for e in supported_edits(describe(text, LEXICON)))
    assert all(offered[e] / len(expressions) >= 0.3 for e in ("object", "attribute", "relation")), offered
    assert "by hand" in SET.data["source"]


@pytest.fixture(scope="module", params=[0, 1])
def run(request):
    return augment_and_audit(SET.samples(), index=INDEX, truth=SET.truth(), rewriter=RuleRewriter(),
                             policy=VariantPolicy(seed=request.param))


def test_goals(run):
    counts, audit = run.counts, run.audit
    assert counts.coverage >= 0.95
    assert all(share >= 0.20 for share in counts.mix().values()) and len(counts.mix()) == 3, counts.mix()
    assert audit.present_object == 0 and audit.not_one_element == 0, audit.problems
    assert audit.describes_share <= 0.02, audit.problems
    assert audit.variants == counts.variants == sum(1 for s in run.samples for q in s.queries if not q.exists)


def test_every_variant_differs_in_one_element_of_its_kind(run):
    for sample in run.samples:
        for q in sample.queries:
            if q.exists:
                continue
            rep = single_replacement(q.gt_sent, q.text)
            assert rep is not None and 1 <= len(rep.new) <= 3, (q.gt_sent, q.text)
            assert q.extra["verified"] in (True, False)


def test_same_seed_same_bytes():
    again = [augment_and_audit(SET.samples(), index=INDEX, truth=SET.truth(), rewriter=RuleRewriter(),
                               policy=VariantPolicy(seed=3)).samples for _ in range(2)]
    assert [encode(s)["json"] for s in again[0]] == [encode(s)["json"] for s in again[1]]


@pytest.mark.parametrize("probe", SET.probes, ids=lambda p: f"{p.text}->{p.variant}")
def test_hand_judged_probes(probe):
    sample = next(s for s in SET.samples() if s.extra["image_id"] == probe.image)
    ctx = image_context(sample, INDEX, LEXICON)
    verdict = validate(probe.text, probe.variant, probe.edit, ctx, target=probe.object)
    if probe.expect == "describes":
        rep = single_replacement(probe.text, probe.variant)
        assert ground(probe.variant, set(range(rep.new_start, rep.new_start + len(rep.new))), ctx, probe.object).fits
        assert verdict.reason is not None
    else:
        assert verdict.reason is None and verdict.verified == (probe.expect == "false")
