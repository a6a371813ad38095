"""Rule rewriter: each edit kind rewrites one element the way the issue says, deterministically per query."""

from __future__ import annotations

from random import Random

import pytest

from pipelines.augment.context import ImageContext
from pipelines.augment.lexicon import Lexicon, pluralise
from pipelines.augment.rules import RuleRewriter
from pipelines.augment.text import single_replacement
from pipelines.augment.validation import check_candidate
from pipelines.augment.variants import VariantPolicy, false_variants, query_rng

SHAPES = ["circle", "square", "triangle", "star", "cross", "diamond"]


def _ctx(present: set[str], texts: list[str], categories: list[str] = SHAPES) -> ImageContext:
    return ImageContext.build(Lexicon.build(categories), frozenset(present), texts)


def _texts(text: str, edit: str, ctx: ImageContext) -> list[str]:
    return [p.text for p in RuleRewriter().propose(text, edit, ctx, Random(0)) if p.text is not None]


def test_object_edits_replace_the_head_noun_with_every_absent_category():
    ctx = _ctx({"circle", "square", "triangle"}, ["the red circle left of the blue square"])
    got = _texts("the red circle left of the blue square", "object", ctx)
    assert sorted(got) == sorted(f"the red {c} left of the blue square" for c in ("star", "cross", "diamond"))


def test_attribute_edits_draw_from_the_dataset_colours_absent_from_the_image():
    lexicon = Lexicon.build(SHAPES)
    annotated = frozenset({("colour", "red", "circle"), ("colour", "blue", "square")})
    vocab = {"colour": frozenset({"red", "blue", "green", "black"})}
    ctx = ImageContext.build(lexicon, frozenset({"circle", "square"}), ["the red circle"], annotated, vocab)
    assert sorted(_texts("the red circle", "attribute", ctx)) == ["the black circle", "the green circle"]
    open_vocab = ImageContext.build(lexicon, frozenset({"circle", "square"}), ["the red circle"], annotated)
    assert "the pink circle" in _texts("the red circle", "attribute", open_vocab)


def test_object_edit_of_a_generic_noun_and_of_a_plural():
    ctx = _ctx({"circle"}, ["the largest shape"])
    assert "the largest star" in _texts("the largest shape", "object", ctx)
    coco = _ctx({"person"}, ["two men on the left"], ["person", "dog", "bus"])
    assert sorted(_texts("two men on the left", "object", coco)) == ["two buses on the left", "two dogs on the left"]
    assert pluralise("bus") == "buses" and pluralise("teddy bear") == "teddy bears" and pluralise("man") == "men"


def test_object_edit_uses_synonyms_to_know_what_is_present():
    ctx = _ctx({"person", "dog"}, ["guy with the puppy"], ["person", "dog", "cat"])
    assert _texts("guy with the puppy", "object", ctx) == ["cat with the puppy"]


def test_no_absent_category_and_no_editable_element_are_reported():
    full = _ctx(set(SHAPES), ["the circle"])
    (only,) = list(RuleRewriter().propose("the circle", "object", full, Random(0)))
    assert only.text is None and only.reason == "no_absent_category"
    (only,) = list(RuleRewriter().propose("the circle", "relation", full, Random(0)))
    assert only.reason == "no_editable_element"
    (only,) = list(RuleRewriter().propose("the circle", "attribute", full, Random(0)))
    assert only.reason == "no_editable_element"


def test_attribute_edits_stay_within_the_kind():
    ctx = _ctx({"circle"}, ["the big red circle"])
    got = _texts("the big red circle", "attribute", ctx)
    assert "the small red circle" in got and "the big blue circle" in got
    for text in got:
        rep = single_replacement("the big red circle", text)
        assert rep is not None and rep.old in {("big",), ("red",)}
        if rep.old == ("big",):
            assert rep.new == ("small",)  # size: big/large/huge are one value, so only "small" changes it
    assert "the big grey circle" not in got  # gray/grey: one value, the first surface is used


def test_relation_edits_swap_opposites_including_multiword_phrases():
    ctx = _ctx({"circle", "square"}, [])
    assert _texts("the circle in front of the square", "relation", ctx) == ["the circle behind the square"]
    assert sorted(_texts("the circle left of the square above", "relation", ctx)) == [
        "the circle left of the square below", "the circle right of the square above"]


def test_superlative_swaps_are_rejected_unless_allowed():
    ctx = _ctx({"circle"}, ["the largest shape"])
    (cand,) = _texts("the largest shape", "relation", ctx)
    assert cand == "the smallest shape"
    assert check_candidate("the largest shape", cand, "relation", ctx) == "superlative_swap"
    assert check_candidate("the largest shape", cand, "relation", ctx, allow_superlatives=True) is None


def test_variants_are_a_function_of_seed_and_query_identity_only():
    ctx = _ctx({"circle", "square"}, ["the red circle left of the square", "the square"])
    policy = VariantPolicy(per_query=3, seed=7)
    a = false_variants("the red circle left of the square", ctx, RuleRewriter(), query_rng(7, "k", "1:1"), policy)
    false_variants("the square", ctx, RuleRewriter(), query_rng(7, "k", "2:2"), policy)  # other work in between
    b = false_variants("the red circle left of the square", ctx, RuleRewriter(), query_rng(7, "k", "1:1"), policy)
    assert a == b
    assert len(a[0]) == 3 and len({t for _, t in a[0]}) == 3
    assert {e for e, _ in a[0]} == {"object", "attribute", "relation"}  # round-robin over the kinds
    seeds = {tuple(false_variants("the red circle left of the square", ctx, RuleRewriter(), query_rng(s, "k", "1:1"),
                                  VariantPolicy(per_query=1, seed=s))[0]) for s in range(12)}
    assert len(seeds) > 1


@pytest.mark.parametrize("edits", [("object",), ("attribute",), ("relation",)])
def test_edits_option_restricts_the_kinds(edits):
    ctx = _ctx({"circle"}, ["the red circle left of the square"])
    made, _ = false_variants("the red circle left of the square", ctx, RuleRewriter(), Random(1),
                             VariantPolicy(edits=edits, per_query=2))
    assert made and {e for e, _ in made} == set(edits)
