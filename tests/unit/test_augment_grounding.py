"""Validation against the image: relation and attribute edits judged per annotated object from boxes, annotated
attributes and what the image's true expressions say, on hand-made layouts whose answers are known."""

from __future__ import annotations

import pytest

from pipelines.augment.context import ImageContext
from pipelines.augment.grounding import ground
from pipelines.augment.lexicon import Lexicon
from pipelines.augment.nouns_coco import COCO_NOUNS
from pipelines.augment.objects import ImageObject
from pipelines.augment.text import single_replacement
from pipelines.augment.validation import REJECT_CODES, validate

LEXICON = Lexicon.build(list(COCO_NOUNS))


def _ctx(objects: list[tuple[int, str, tuple]], refs: list[tuple[int, str]], *, size=(640, 480),
         annotated: dict[int, dict[str, str]] | None = None, dataset_values=None) -> ImageContext:
    annotated = annotated or {}
    objs = tuple(ImageObject(ann_id=a, category=c, box=box and tuple(float(v) for v in box),
                             area=box and float(box[2] * box[3]),
                             annotated=frozenset(annotated.get(a, {}).items())) for a, c, box in objects)
    facts = frozenset((k, v, c) for a, c, _ in objects for k, v in annotated.get(a, {}).items())
    return ImageContext.build(LEXICON, frozenset(c for _, c, _ in objects), [t for _, t in refs], facts,
                              dataset_values, objects=objs, size=size, descriptions=refs)


def _fits(ctx: ImageContext, original: str, candidate: str, target: int):
    rep = single_replacement(original, candidate)
    return ground(candidate, set(range(rep.new_start, rep.new_start + len(rep.new))), ctx, target)


# The example: a "left guy" and a "lady on right".
STREET = _ctx([(1, "person", (40, 110, 150, 360)), (2, "person", (420, 100, 140, 370))],
              [(1, "left guy"), (2, "lady on right"), (1, "man in red shirt"), (2, "woman in black")])


def test_a_swapped_side_that_another_object_of_the_category_takes_is_rejected():
    assert _fits(STREET, "lady on right", "lady on left", 2).fits == (1,)
    verdict = validate("lady on right", "lady on left", "relation", STREET, target=2)
    assert verdict.reason == "describes_annotated_object" and "describes_annotated_object" in REJECT_CODES


def test_a_lone_object_is_placed_against_the_image_halves():
    ctx = _ctx([(1, "giraffe", (300, 60, 200, 380)), (2, "car", (20, 300, 200, 120))],
               [(1, "giraffe on the right"), (2, "car on the left")])
    assert validate("giraffe on the right", "giraffe on the left", "relation", ctx, target=1).verified
    centre = _ctx([(1, "giraffe", (250, 60, 140, 380))], [(1, "giraffe on the right")])
    verdict = validate("giraffe on the right", "giraffe on the left", "relation", centre, target=1)
    assert verdict.reason is None and not verdict.verified  # in the middle third: the boxes cannot tell


CHAIRS = _ctx([(k, "chair", (20 + 150 * (k - 1), 220, 110, 200)) for k in range(1, 5)],
              [(2, "second chair from left"), (3, "second chair from right")])


@pytest.mark.parametrize(
    ("original", "candidate", "target", "fits"),
    [
        ("second chair from right", "second chair from left", 3, (2,)),
        ("second chair from right", "third chair from right", 3, (2,)),
        ("second chair from left", "fifth chair from left", 2, ()),  # four chairs: there is no fifth
        ("second chair from left", "second chair from right", 2, (3,)),
    ],
)
def test_ordinals_count_the_boxes_of_the_category(original, candidate, target, fits):
    assert _fits(CHAIRS, original, candidate, target).fits == fits


def test_an_edit_that_leaves_the_expression_true_of_its_referent_is_rejected():
    three = _ctx([(k, "chair", (20 + 200 * (k - 1), 220, 110, 200)) for k in range(1, 4)],
                 [(2, "second chair from left")])
    verdict = validate("second chair from left", "second chair from right", "relation", three, target=2)
    assert verdict.reason == "still_describes_target" and "still_describes_target" in REJECT_CODES


def test_binary_relations_use_every_annotated_anchor():
    ctx = _ctx([(1, "bus", (150, 80, 330, 260)), (2, "car", (500, 200, 110, 90)), (3, "truck", (20, 220, 150, 180))],
               [(2, "white car behind the bus"), (3, "truck in front of the bus")])
    assert validate("white car behind the bus", "white car in front of the bus", "relation", ctx, target=2).verified
    assert validate("truck in front of the bus", "truck behind the bus", "relation", ctx, target=3).verified
    assert _fits(ctx, "truck in front of the bus", "truck left of the bus", 3).fits == (3,)  # true of the truck


def test_depth_compares_the_lower_edges():
    ctx = _ctx([(1, "person", (80, 150, 100, 220)), (2, "person", (400, 80, 80, 160))],
               [(2, "skier in the back"), (1, "skier in red")])
    assert _fits(ctx, "skier in the back", "skier in the front", 2).fits == (1,)


def test_attribute_edits_use_what_the_expressions_say_about_each_object():
    assert validate("man in red shirt", "man in black shirt", "attribute", STREET, target=1).reason == (
        "describes_annotated_object")  # the woman is "in black"
    verdict = validate("man in red shirt", "man in green shirt", "attribute", STREET, target=1)
    assert verdict.reason is None and verdict.verified  # each person's colour is known and none is green
    ctx = _ctx([(1, "person", (40, 110, 150, 360)), (2, "person", (420, 100, 140, 370))],
               [(1, "man in red shirt"), (2, "lady on right")])
    verdict = validate("man in red shirt", "man in green shirt", "attribute", ctx, target=1)
    assert verdict.reason is None and not verdict.verified  # nothing says what the lady wears


def test_a_position_that_rules_other_objects_out_verifies_an_attribute_edit():
    ctx = _ctx([(1, "dog", (80, 200, 200, 180)), (2, "dog", (360, 240, 140, 120))],
               [(1, "white dog on the left"), (2, "black puppy")])
    verdict = validate("white dog on the left", "black dog on the left", "attribute", ctx, target=1)
    assert verdict.reason is None and verdict.verified  # the black dog is the one on the right
    assert validate("black puppy", "white puppy", "attribute", ctx, target=2).reason is not None


def test_sizes_compare_the_boxes_of_the_group():
    ctx = _ctx([(1, "elephant", (10, 100, 200, 280)), (2, "elephant", (220, 180, 140, 160))],
               [(1, "big elephant"), (2, "elephant on the right")])
    assert _fits(ctx, "big elephant", "small elephant", 1).fits == (2,)


def test_annotated_attributes_decide_where_the_dataset_has_them():
    ctx = _ctx([(1, "person", (40, 110, 150, 360)), (2, "person", (420, 100, 140, 370))], [(1, "left guy")],
               annotated={1: {"colour": "red"}, 2: {"colour": "blue"}},
               dataset_values={"colour": frozenset({"red", "blue", "green"})})
    assert _fits(ctx, "red guy on left", "blue guy on left", 1).fits == ()  # the blue one is on the right
    assert _fits(ctx, "red guy", "blue guy", 1).fits == (2,)
    assert validate("red guy on left", "green guy on left", "attribute", ctx, target=1).verified
    # The word-level rule stays stricter: a dataset value some object of the image has is never used.
    assert validate("red guy on left", "blue guy on left", "attribute", ctx, target=1).reason == "attribute_in_image"


def test_without_boxes_nothing_is_verified():
    ctx = _ctx([(1, "person", None), (2, "person", None)], [(1, "left guy")])
    verdict = validate("left guy", "right guy", "relation", ctx, target=1)
    assert verdict.reason is None and not verdict.verified


def test_an_edit_the_parser_does_not_read_is_kept_unverified():
    ctx = _ctx([(1, "person", (60, 120, 140, 350)), (2, "umbrella", (20, 40, 220, 120))],
               [(1, "girl holding a red umbrella")])
    verdict = validate("girl holding a red umbrella", "girl holding a blue umbrella", "attribute", ctx, target=1)
    assert verdict.reason is None and not verdict.verified
