"""The lexicon for real expressions (COCO and RefCLEF words, groups, plurals, head nouns) and the reading of an
expression into constraints (attributes and whose they are, sides, ordinals, relations)."""

from __future__ import annotations

import pytest

from pipelines.augment import nouns_coco, nouns_refclef
from pipelines.augment.description import describe
from pipelines.augment.lexicon import Lexicon, pluralise
from pipelines.augment.text import words_of

COCO = Lexicon.build(list(nouns_coco.COCO_NOUNS))


def test_the_data_covers_coco_and_says_where_it_comes_from():
    assert len(nouns_coco.COCO_NOUNS) == 80 and "hand-written" in nouns_coco.SOURCE
    assert "SAIAPR" in nouns_refclef.SOURCE
    for category, words in nouns_coco.COCO_NOUNS.items():
        assert words and all(w == w.lower().strip() for w in words), category
        assert COCO.sense_of(tuple(category.split()))[0] >= {category}


@pytest.mark.parametrize("word", ["man", "woman", "guy", "lady", "boy", "girl", "kid", "child", "player", "skier",
                                  "batter", "catcher", "cyclist", "jockey", "bride", "umpire", "surfer", "toddler"])
def test_people_words_name_person(word):
    assert COCO.sense_of((word,)) == (frozenset({"person"}), False)


@pytest.mark.parametrize(
    ("words", "categories", "plural"),
    [
        (("men",), {"person"}, True), (("people",), {"person"}, True), (("buses",), {"bus"}, True),
        (("skis",), {"skis"}, False), (("bike",), {"bicycle", "motorcycle"}, False),
        (("surf", "board"), {"surfboard"}, False), (("cub",), {"bear"}, False), (("fridge",), {"refrigerator"}, False),
        (("glass",), {"wine glass", "cup"}, False), (("animal",), set(nouns_coco.COCO_GROUPS["animal"]), False),
    ],
)
def test_synonyms_groups_and_plurals(words, categories, plural):
    assert COCO.sense_of(words) == (frozenset(categories), plural)


def test_words_that_are_not_nouns_here():
    assert COCO.sense_of(("glasses",)) is None  # worn, not two wine glasses
    assert COCO.category_of(("bike",)) == (None, False)  # names two categories: no single one


def test_a_dataset_only_uses_the_entries_of_its_categories():
    shapes = Lexicon.build(["circle", "square"])
    assert shapes.sense_of(("guy",)) is None and shapes.sense_of(("circles",)) == (frozenset({"circle"}), True)
    clef = Lexicon.build(["man", "child-boy", "sky-blue", "rowboat-thing"])
    assert clef.sense_of(("boy",)) == (frozenset({"child-boy"}), False)
    assert clef.sense_of(("sky",)) == (frozenset({"sky-blue"}), False)
    assert clef.sense_of(("rowboat", "thing")) == (frozenset({"rowboat-thing"}), False)  # unknown name: its words
    assert clef.surface_of("child-boy", plural=True) == "boys"


@pytest.mark.parametrize(
    ("text", "head"),
    [
        ("a woman in a black jacket holding a red umbrella", "woman"),
        ("baseball player on the left", "player"),
        ("orange cat", "cat"),
        ("orange on the right", "orange"),
        ("red shirt guy", "guy"),
        ("guy's bike", "bike"),
        ("slice of pizza", "pizza"),
        ("hot dog on right", "hot dog"),
        ("ball boy on the right", "boy"),
        ("two men on the left", "men"),
        ("second from left", None),
    ],
)
def test_head_noun_inside_longer_phrases(text, head):
    words = words_of(text)
    found = COCO.head_noun(words)
    assert (None if found is None else " ".join(w.text for w in words[found.start:found.end])) == head


def test_pluralise():
    assert [pluralise(w) for w in ("bus", "teddy bear", "man", "baby", "knife", "skis")] == [
        "buses", "teddy bears", "men", "babies", "knives", "skis"]


def _owners(text: str) -> list[tuple[str, str]]:
    d = describe(text, COCO)
    return [(a.value, d.words[a.owner]) for a in d.attributes]


def test_attributes_belong_to_the_noun_they_describe():
    assert _owners("man in red shirt") == [("red", "man")]
    assert _owners("red shirt guy") == [("red", "guy")]
    assert _owners("white car behind the bus") == [("white", "car")]
    assert _owners("a woman in a black jacket holding a red umbrella") == [("black", "woman"), ("red", "umbrella")]
    assert _owners("car behind the white bus") == [("white", "bus")]


@pytest.mark.parametrize(
    ("text", "places"),
    [
        ("left guy", [("side", "left", 0, None)]),
        ("top left donut", [("side", "top", 0, None), ("side", "left", 0, None)]),
        ("second chair from right", [("ordinal", "right", 2, None)]),
        ("2nd from the left", [("ordinal", "left", 2, None)]),
        ("white car behind the bus", [("relation", "back", 0, "bus")]),
        ("man to the left of the dog", [("relation", "left", 0, "dog")]),
        ("guy behind the fence", [("relation", "back", 0, "?")]),
        ("bus on the left side of the picture", [("side", "left", 0, None)]),
        ("largest elephant", [("size", "big", 0, None)]),
        ("dog bigger than the cat", []),
    ],
)
def test_location_words(text, places):
    d = describe(text, COCO)
    got = [(p.kind, p.direction, p.rank,
            None if p.kind != "relation" else ("?" if p.anchor is None else d.words[p.anchor.start])) for p in d.places]
    assert got == places
