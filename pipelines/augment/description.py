"""Read a referring expression as the constraints it puts on its referent: the head noun, the attribute words and
whose they are, and the location words (sides, ordinals, relations to an anchor object, size superlatives).

    "man in red shirt on left"            head man; colour red of the man; side left
    "second chair from right"             head chair; ordinal 2 counted from the right
    "white car behind the bus"            head car; colour white of the car; relation back (behind) to anchor bus
    "girl holding a red umbrella"         head girl; colour red of the umbrella (neither referent nor anchor)

Only what the word lists know is read; anything else ("holding", "with glasses") puts no constraint.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pipelines.augment.lexicon import Lexicon, NounSpan
from pipelines.augment.text import words_of
from pipelines.augment.vocab import ANCHOR_FILLERS, ATTRIBUTE_VALUE, ORDINALS, PARTS, RELATION_SWAPS, SCENE_NOUNS

DIRECTIONS: dict[str, str] = {
    **dict.fromkeys(("left", "leftmost", "left of"), "left"),
    **dict.fromkeys(("right", "rightmost", "right of"), "right"),
    **dict.fromkeys(("top", "topmost", "upper", "above", "over", "on top of", "higher", "highest"), "top"),
    **dict.fromkeys(("bottom", "bottommost", "lower", "below", "under", "underneath", "beneath", "lowest"), "bottom"),
    **dict.fromkeys(("front", "in front of", "closest", "nearest", "closer"), "front"),
    **dict.fromkeys(("back", "behind", "in back of", "farthest", "furthest", "farther", "further"), "back"),
    **dict.fromkeys(("middle", "center", "centre"), "middle"),
    **dict.fromkeys(("largest", "biggest", "bigger", "larger"), "big"),
    **dict.fromkeys(("smallest", "smaller"), "small"),
    **dict.fromkeys(("tallest", "taller"), "tall"),
    **dict.fromkeys(("shortest", "shorter"), "short"),
}
"""Location phrase -> the direction it points to."""

SIZE_DIRECTIONS = frozenset({"big", "small", "tall", "short"})
PREPOSITIONS = frozenset({"above", "over", "on top of", "below", "under", "underneath", "beneath", "behind",
                          "in front of", "in back of"})
"""Phrases that take an anchor noun directly ("behind the bus"); side words need "of" ("left of the bus")."""
SIDE_WORDS = frozenset({"left", "right", "top", "bottom", "front", "back"})
_STOP = frozenset({"and", "with", "in", "on", "holding", "wearing", "near", "next", "by", "at", "from", "who", "that"})
_PHRASES_BY_FIRST: dict[str, list[tuple[str, ...]]] = {}
for _phrase in sorted(DIRECTIONS, key=lambda p: -len(p.split())):
    _PHRASES_BY_FIRST.setdefault(_phrase.split()[0], []).append(tuple(_phrase.split()))
"""First word -> the location phrases starting with it, longest first ("in front of" before "front")."""


@dataclass(frozen=True)
class AttributeMention:
    """An attribute word: words[index] says (kind, value) of the noun starting at `owner` (None: no noun)."""

    kind: str
    value: str
    index: int
    owner: int | None


@dataclass(frozen=True)
class Place:
    """A location constraint on the referent.

    Attributes:
        kind: "side" (left guy, on the right), "ordinal" (second from left), "relation" (behind the bus) or
            "size" (largest, taller).
        direction: left | right | top | bottom | front | back | middle (side, relation), the side an ordinal counts
            from ("" when it names none), or big | small | tall | short (size).
        words: the word indices the constraint is written with (an edit of any of them edits this constraint).
        rank: an ordinal's rank (second -> 2).
        anchor: a relation's anchor noun.
    """

    kind: str
    direction: str
    words: frozenset[int]
    rank: int = 0
    anchor: NounSpan | None = None


@dataclass(frozen=True)
class Description:
    """What an expression says about its referent (module docstring)."""

    words: tuple[str, ...]
    head: NounSpan | None
    attributes: tuple[AttributeMention, ...]
    places: tuple[Place, ...]

    def attributes_of(self, noun: NounSpan | None) -> list[AttributeMention]:
        """The attribute mentions owned by `noun` (none for None)."""
        return [] if noun is None else [a for a in self.attributes if a.owner == noun.start]

    def element_at(self, indices: set[int]) -> AttributeMention | Place | NounSpan | None:
        """The constraint written with any of the word `indices`: a head attribute or the head itself, a place
        (including a relation whose anchor or anchor attribute is written there), else None (an unread word)."""
        head_attrs = self.attributes_of(self.head)
        for a in head_attrs:
            if a.index in indices:
                return a
        for p in self.places:
            anchor_words = set() if p.anchor is None else set(range(p.anchor.start, p.anchor.end))
            anchor_words |= {a.index for a in self.attributes_of(p.anchor)}
            if indices & (set(p.words) | anchor_words):
                return p
        if self.head is not None and indices & set(range(self.head.start, self.head.end)):
            return self.head
        return None


@functools.lru_cache(maxsize=1 << 16)
def describe(text: str, lexicon: Lexicon) -> Description:
    """The constraints `text` puts on its referent (module docstring); cached per (text, lexicon)."""
    words = words_of(text)
    texts = tuple(w.text for w in words)
    nouns = lexicon.nouns_in(words)
    head = lexicon.head_noun(words)
    noun_at = {n.start: n for n in nouns}
    in_noun = {i for n in nouns for i in range(n.start, n.end)}
    places = _places(texts, noun_at, in_noun)
    taken = {i for p in places for i in p.words}
    attributes = tuple(
        AttributeMention(*ATTRIBUTE_VALUE[t], index=i, owner=_owner(i, texts, nouns, head))
        for i, t in enumerate(texts)
        if t in ATTRIBUTE_VALUE and i not in in_noun and i not in taken
    )
    return Description(words=texts, head=head, attributes=attributes, places=tuple(places))


def _owner(i: int, texts: tuple[str, ...], nouns: list[NounSpan], head: NounSpan | None) -> int | None:
    """Start of the noun the attribute word at `i` describes: a noun within the next three words ("white car",
    "red shirt guy"), else, after a part word or none, the nearest noun before it ("man in red shirt"), else the
    head."""
    for j in range(i + 1, min(i + 4, len(texts))):
        noun = next((n for n in nouns if n.start == j), None)
        if noun is not None:
            return noun.start
        if texts[j] in _STOP or texts[j] in DIRECTIONS:
            break
        if texts[j] not in PARTS and texts[j] not in ATTRIBUTE_VALUE and texts[j] not in ("a", "an", "the"):
            break
    before = [n for n in nouns if n.end <= i and not n.possessive]
    if before:
        return before[-1].start
    return None if head is None else head.start


def _places(texts: tuple[str, ...], noun_at: dict[int, NounSpan], in_noun: set[int]) -> list[Place]:
    """The location constraints of an expression's words: ordinals with the side they count from, then location
    phrases (longest first) as sizes, relations to an anchor noun, or sides."""
    places: list[Place] = []
    used: set[int] = set()
    for i, t in enumerate(texts):
        if t in ORDINALS and i not in in_noun:
            side = _ordinal_side(texts, i)
            words = {i} if side is None else {i, side}
            if side is not None or t not in RELATION_SWAPS:
                places.append(Place("ordinal", "" if side is None else texts[side], frozenset(words), ORDINALS[t]))
                used |= words
    i = 0
    while i < len(texts):
        found = next((p for p in _PHRASES_BY_FIRST.get(texts[i], ()) if texts[i : i + len(p)] == p), None)
        if found is None or i in used or i in in_noun:
            i += 1
            continue
        phrase, n = " ".join(found), len(found)
        span = frozenset(range(i, i + n))
        direction = DIRECTIONS[phrase]
        after = i + n
        if after < len(texts) and texts[after] == "than":
            i = after  # "bigger than the dog": a comparison this reader does not evaluate
            continue
        if direction in SIZE_DIRECTIONS:
            places.append(Place("size", direction, span))
        else:
            need_of = phrase not in PREPOSITIONS and not phrase.endswith(" of")
            relation, anchor = _anchor(texts, after, noun_at, need_of=need_of)
            places.append(Place("relation" if relation else "side", direction, span, anchor=anchor))
        i = after
    return places


def _ordinal_side(texts: tuple[str, ...], i: int) -> int | None:
    """Index of the side word of "<ordinal> ... from (the) <side>" within four words, else None."""
    for j in range(i + 1, min(i + 5, len(texts))):
        if texts[j] == "from":
            k = j + 1 + (j + 1 < len(texts) and texts[j + 1] == "the")
            return k if k < len(texts) and texts[k] in SIDE_WORDS else None
    return None


def _anchor(texts: tuple[str, ...], at: int, noun_at: dict[int, NounSpan], *,
            need_of: bool) -> tuple[bool, NounSpan | None]:
    """Whether a location phrase ending before `at` relates the referent to another object, and that object's noun
    when the lexicon knows it: "behind the bus" -> (True, bus), "behind the fence" -> (True, None), "on the left"
    and "left side of the picture" -> (False, None). Side words need "of" ("left of the bus"); "left guy" is a side.
    """
    if need_of and (at >= len(texts) or texts[at] != "of"):
        return False, None
    j = at
    while j < len(texts) and (texts[j] in ANCHOR_FILLERS or texts[j] in ATTRIBUTE_VALUE):
        j += 1
    if j >= len(texts) or texts[j] in SCENE_NOUNS or texts[j] in _STOP or texts[j] in DIRECTIONS:
        return False, None
    return True, noun_at.get(j)
