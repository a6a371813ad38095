"""The validation every candidate goes through: hand-written candidates and the reject code each must get."""

from __future__ import annotations

import pytest

from pipelines.augment.context import ImageContext
from pipelines.augment.validation import REJECT_CODES, check_candidate
from tests.fixtures.augment import shape_index

# The image holds a red circle (ann 1) and a blue square (ann 2); the dataset has six shapes.
INDEX = shape_index({1: "circle", 2: "square"}, {1: "red", 2: "blue"})
TRUE = ["the red circle left of the blue square", "the blue square"]
CTX = ImageContext.build(INDEX.lexicon(), INDEX.image_categories[1], TRUE, INDEX.image_attributes[1])
ORIGINAL = TRUE[0]


@pytest.mark.parametrize(
    ("candidate", "edit", "expected"),
    [
        ("the red star left of the blue square", "object", None),
        ("the red diamonds left of the blue square", "object", None),
        ("the red square left of the blue square", "object", "category_present"),
        ("the red banana left of the blue square", "object", "unverifiable_category"),
        ("the red shape left of the blue square", "object", "unverifiable_category"),  # generic: names nothing
        ("the star circle left of the blue square", "object", "not_a_noun"),
        ("the green circle left of the blue square", "attribute", None),
        ("the red circle left of the red square", "attribute", None),  # the annotations have no red square
        ("the blue circle left of the blue square", "attribute", None),
        ("the small circle left of the blue square", "attribute", "attribute_kind_mismatch"),
        ("the red star left of the blue square", "attribute", "not_an_attribute"),
        ("the red circle right of the blue square", "relation", None),
        ("the red circle behind the blue square", "relation", None),
        ("the red circle near of the blue square", "relation", "not_a_relation"),
        ("the red circle left of the blue square", "object", "unchanged"),
        ("The  Red circle left of the blue square.", "attribute", "unchanged"),
        ("the blue square", "object", "matches_true_expression"),
        ("the green star left of the blue square", "object", "not_a_noun"),  # "red circle": two elements
        ("the green circle right of the blue square", "attribute", "not_one_replacement"),
        ("the red circle left of the blue square now", "relation", "not_one_replacement"),
        ("   ", "object", "empty"),
        ("the red star left of the blue square", "colour", "unknown_edit"),
    ],
)
def test_candidate_verdicts(candidate, edit, expected):
    assert check_candidate(ORIGINAL, candidate, edit, CTX) == expected
    assert expected is None or expected in REJECT_CODES


def test_attribute_edit_that_describes_an_annotated_object_is_rejected():
    assert check_candidate("the green square on top", "the blue square on top", "attribute", CTX) == (
        "attribute_seen_in_image"
    )


def test_annotated_colour_makes_generic_nouns_true_too():
    # A blue square exists, so "the blue shape" describes something: not a false premise.
    assert check_candidate("the red shape", "the blue shape", "attribute", CTX) == "attribute_seen_in_image"
    assert check_candidate("the red shape", "the green shape", "attribute", CTX) is None


# The same image in a dataset whose annotations use three colours: red, blue and green.
VOCAB_CTX = ImageContext.build(INDEX.lexicon(), INDEX.image_categories[1], TRUE, INDEX.image_attributes[1],
                               {"colour": frozenset({"red", "blue", "green"})})


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("the green circle left of the blue square", None),  # a dataset colour no object of the image has
        ("the pink circle left of the blue square", "attribute_not_in_dataset"),  # false from its words alone
        ("the red circle left of the red square", "attribute_in_image"),  # the circle is red
        ("the blue circle left of the blue square", "attribute_in_image"),
        ("the red circle left of the green square", None),
    ],
)
def test_attribute_edits_use_the_dataset_values_absent_from_the_image(candidate, expected):
    assert check_candidate(ORIGINAL, candidate, "attribute", VOCAB_CTX) == expected
    assert expected is None or expected in REJECT_CODES


def test_kinds_the_dataset_does_not_annotate_keep_the_whole_word_list():
    assert check_candidate("the big red circle", "the small red circle", "attribute", VOCAB_CTX) is None
    assert VOCAB_CTX.attribute_problem("size", "small") is None
    assert CTX.attribute_problem("colour", "pink") is None  # no dataset vocabulary given: any colour word


def test_index_collects_the_dataset_attribute_vocabulary():
    assert INDEX.attribute_values == {"colour": frozenset({"red", "blue"})}
    assert shape_index({1: "circle"}).attribute_values == {}


def test_context_reads_attributes_from_annotations():
    assert ("colour", "blue", "square") in CTX.attribute_pairs
    assert ("colour", "blue", "shape") in CTX.attribute_pairs
    assert CTX.absent == ("cross", "diamond", "star", "triangle")
