"""LM rewriter: the answer parser on hand-written answers, and the plumbing with a tiny random local model."""

from __future__ import annotations

from random import Random

import pytest

from pipelines.augment.context import ImageContext
from pipelines.augment.lm import LMRewriter, build_prompt, parse_answer
from pipelines.augment.validation import REJECT_CODES
from pipelines.augment.variants import VariantPolicy, augment_sample, false_variants
from tests.fixtures.augment import shape_index, shape_sample

INDEX = shape_index({1: "circle", 2: "square"}, {1: "red", 2: "blue"})
CTX = ImageContext.build(INDEX.lexicon(), INDEX.image_categories[1], ["the red circle"], INDEX.image_attributes[1])


@pytest.mark.parametrize(
    ("answer", "edit", "text", "reason"),
    [
        ("EDIT: object\nFALSE: the red star", "object", "the red star", None),
        ("  EDIT: Object.\n  FALSE: \"the red star\"  \n\nsome chatter", "object", "the red star", None),
        (" the green circle\nExpression: next", "attribute", "the green circle", None),  # continuation of "FALSE:"
        ("EDIT: relation\nFALSE: the red circle on the right", "object", None, "lm_bad_edit_type"),
        ("FALSE: the red star", "object", None, "lm_malformed"),  # no EDIT line
        ("EDIT: object\nFALSE:   ", "object", None, "lm_malformed"),
        ("", "object", None, "lm_malformed"),
        ("EDIT: object\nFALSE: the red \ufffd\ufffd", "object", None, "lm_malformed"),
        ("EDIT: object\nFALSE: " + "x" * 400, "object", None, "lm_malformed"),
    ],
)
def test_parse_answer(answer, edit, text, reason):
    got = parse_answer(answer, edit)
    assert (got.edit, got.text, got.reason) == (edit, text, reason)


def test_attribute_prompt_names_the_dataset_values_absent_from_the_image():
    vocab = {"colour": frozenset({"red", "blue", "green", "black"})}
    ctx = ImageContext.build(INDEX.lexicon(), INDEX.image_categories[1], ["the red circle"],
                             INDEX.image_attributes[1], vocab)
    prompt = build_prompt("the red circle", "attribute", ctx)
    assert "Use a value that is NOT in the image: colour: black, green." in prompt
    assert "NOT in the image: colour" not in build_prompt("the red circle", "attribute", CTX)  # no vocabulary known


def test_prompt_names_the_absent_categories_and_ends_at_the_answer():
    prompt = build_prompt("the red circle", "object", CTX)
    assert "cross, diamond, star, triangle" in prompt and "Objects in the image: circle, square." in prompt
    assert prompt.endswith("Expression: the red circle\nEDIT: object\nFALSE:")


class ScriptedLM(LMRewriter):
    """The real LMRewriter with hand-written answers in place of generation (tests parse + validation only)."""

    def __init__(self, answers: list[str]) -> None:
        super().__init__("unused", num_tries=len(answers))
        self.answers = answers

    def generate(self, prompt: str, *, sample_seed: int | None) -> str:
        return self.answers.pop(0)


def test_lm_answers_go_through_the_same_validation():
    answers = [" the red square", "garbage without format\n", " the red star"]  # present, then unverifiable, then ok
    made, rejected = false_variants("the red circle", CTX, ScriptedLM(answers), Random(0),
                                    VariantPolicy(edits=("object",), per_query=1))
    assert made == [("object", "the red star")]
    assert rejected == {("object", "category_present"): 1, ("object", "not_a_noun"): 1}


def test_tiny_local_lm_plumbing(tiny_lm_dir):
    lm = LMRewriter(str(tiny_lm_dir), max_new_tokens=6, num_tries=2)
    proposals = list(lm.propose("the red circle", "object", CTX, Random(0)))
    assert len(proposals) == 2 and all((p.text is None) != (p.reason is None) for p in proposals)
    assert [p.text for p in proposals] == [p.text for p in lm.propose("the red circle", "object", CTX, Random(0))]
    sample = shape_sample(["the red circle"], [1])
    out = augment_sample(sample, index=INDEX, lexicon=INDEX.lexicon(), rewriter=lm,
                         policy=VariantPolicy(edits=("object",), per_query=1))
    # A random model's answers are noise: each of the 2 must be rejected with a known reason, none trusted.
    assert out.counts.true_queries == 1 and out.counts.covered == 0 and out.counts.shortfall == 1
    assert sum(out.counts.rejected.values()) == 2
    assert all(edit == "object" and reason in REJECT_CODES for edit, reason in out.counts.rejected)
    assert [q.exists for q in out.sample.queries] == [True]


def test_missing_model_dir_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="augment.lm_path"):
        LMRewriter(str(tmp_path / "nope")).generate("hi", sample_seed=None)
