"""The edit mix: the type is drawn first by weight among the supported types, corrected by the image's running
mix; the draw weights are calibrated on the split; the job's options that set them."""

from __future__ import annotations

from collections import Counter
from random import Random

import pytest

from jobs._config import load_config
from pipelines.augment.calibration import expected_mix, fitted_weights, valid_shares
from pipelines.augment.config import AugmentConfig
from pipelines.augment.description import describe
from pipelines.augment.lexicon import Lexicon
from pipelines.augment.mix import EditMix, supported_edits
from pipelines.augment.rules import RuleRewriter
from pipelines.augment.variants import VariantPolicy, augment_sample, make_variants
from pipelines.augment.context import ImageContext
from tests.fixtures.augment import shape_index, shape_sample

ALL = frozenset({"object", "attribute", "relation"})


def test_a_fresh_draw_follows_the_weights():
    firsts = Counter(EditMix({"object": 2, "attribute": 1, "relation": 1}).order(ALL, Random(k))[0]
                     for k in range(4000))
    assert abs(firsts["object"] / 4000 - 0.5) < 0.03 and abs(firsts["relation"] / 4000 - 0.25) < 0.03


def test_the_running_mix_pulls_towards_the_types_it_lacks():
    mix = EditMix({"object": 1, "attribute": 1, "relation": 1})
    mix.add("object")
    mix.add("object")
    picks = Counter(mix.order(frozenset({"object", "attribute"}), Random(k))[0] for k in range(1000))
    assert picks["attribute"] > 900


def test_unsupported_and_used_types_come_last():
    order = EditMix({"object": 1, "attribute": 1, "relation": 1}).order(
        frozenset({"object", "relation"}), Random(0), used=frozenset({"object"}))
    assert order == ["relation", "object", "attribute"]


def test_bad_weights_are_refused():
    with pytest.raises(ValueError, match="edit weights"):
        EditMix({"object": 0.0, "attribute": 0.0})


def test_supported_edits_read_the_expression():
    lexicon = Lexicon.build(["person", "dog"])
    assert supported_edits(describe("man in red shirt on left", lexicon)) == ALL
    assert supported_edits(describe("the dog", lexicon)) == {"object"}
    assert supported_edits(describe("second from left", lexicon)) == {"relation"}


def test_the_chosen_type_falls_back_only_without_a_valid_candidate():
    index = shape_index({1: "circle", 2: "square"}, {1: "red", 2: "blue"})
    ctx = ImageContext.build(index.lexicon(), index.image_categories[1], ["the red circle"], index.image_attributes[1])
    policy = VariantPolicy(weights=(("object", 1.0), ("attribute", 1e-6), ("relation", 1e-6)))
    made, rejected = make_variants("the red circle", ctx, RuleRewriter(), Random(0), policy)
    assert [v.edit for v in made] == ["object"] and not rejected
    only_relation = VariantPolicy(weights=(("object", 1e-6), ("attribute", 1e-6), ("relation", 1.0)))
    made, rejected = make_variants("the largest circle", ctx, RuleRewriter(), Random(0), only_relation)
    assert made[0].edit == "object" and rejected == {("relation", "superlative_swap"): 1}


def test_fitted_weights_give_the_scarce_type_every_expression_it_can_take():
    sets = {frozenset({"object"}): 50, frozenset({"object", "attribute"}): 30, frozenset(ALL): 20}
    even = {"object": 1.0, "attribute": 1.0, "relation": 1.0}
    plain = expected_mix(even, sets)
    fitted = expected_mix(fitted_weights(even, sets), sets)
    assert plain["relation"] == pytest.approx(20 / 3 / 100)
    assert fitted["relation"] == pytest.approx(0.2, abs=0.005)  # all 20 expressions that offer it
    assert fitted["attribute"] == pytest.approx(0.3, abs=0.01) and fitted["object"] == pytest.approx(0.5, abs=0.01)


def test_calibration_measures_valid_shares_and_the_image_mix_uses_them():
    index = shape_index({1: "circle", 2: "square", 3: "triangle"})  # no annotated colours: any colour word goes
    sample = shape_sample(["the red circle", "the circle", "the blue square left of the green triangle"], [1, 1, 2])
    cal = valid_shares([sample], index=index, lexicon=index.lexicon(), policy=VariantPolicy())
    assert cal.expressions == 3 and cal.shares["object"] == 1.0 and cal.shares["attribute"] == pytest.approx(2 / 3)
    out = augment_sample(sample, index=index, lexicon=index.lexicon(), rewriter=RuleRewriter(), policy=VariantPolicy())
    assert sorted(out.counts.accepted) == ["attribute", "object", "relation"]  # "the circle" takes the object edit


def test_config_weights_and_calibration_options(tmp_path):
    base = ["dataset=refcoco", "root=/r", "split=train", f"out={tmp_path}"]
    cfg = load_config(AugmentConfig, [*base, "edit_weights={relation: 2}"])
    assert cfg.weights() == {"object": 1.0, "attribute": 1.0, "relation": 2.0}
    assert dict(cfg.policy().weights) == cfg.weights() and cfg.calibration_images == 256
    with pytest.raises(SystemExit, match="edit_weights"):
        load_config(AugmentConfig, [*base, "edits=[object]", "edit_weights={relation: 1}"])
    with pytest.raises(SystemExit, match="edit_weights"):
        load_config(AugmentConfig, [*base, "edit_weights={object: 0, attribute: 0, relation: 0}"])
    with pytest.raises(SystemExit, match="calibration_images"):
        load_config(AugmentConfig, [*base, "calibration_images=-1"])
