"""Referring expressions generated from what is really drawn, and a resolver/parser that checks them.

An `Expression` is a noun phrase ("red circle", "shape") plus an optional selector: an extreme position
("leftmost"), a size ("largest"), or a relation to an anchor noun ("left of the green triangle"). `resolve`
returns every object the expression could denote, with a margin so that near-ties count as ambiguous;
the generator keeps only expressions that resolve to exactly their target(s), and `parse` reads the text back
so tests can check that property from the written files alone.

Types (stored as `type` / `query_types` in the raw files): colour, shape, colour+shape, spatial, size,
false_premise, negative.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from pipelines.synth.palette import COLOURS, PARAPHRASES, PLURALS, SHAPES
from pipelines.synth.scene import SceneObject

EXTREMES = ("leftmost", "rightmost", "topmost", "bottommost")
SIZES = ("largest", "smallest")
RELATIONS = ("left of", "right of", "above", "below")
OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
SIZE_RATIO = 1.3
"""`largest` is unambiguous only when the target's area exceeds every other candidate's by this factor."""

SENTENCE_TEMPLATES = (
    "Looking at this picture, which object is {desc}?",
    "Can you find {desc} in this image?",
    "Among all the shapes drawn here, point out {desc}.",
    "If I asked you to pick up {desc}, which part of the picture would you choose?",
    "Several shapes are drawn on this canvas; please identify {desc}.",
)
"""Long (is_sentence) query templates; `{desc}` is the expression with shape names paraphrased."""
APOSTROPHE_TEMPLATE = "Where\u2019s {desc} in this picture?"
"""A long-query template with a curly apostrophe (U+2019: byte 0x92 in cp1252, which is not valid UTF-8), used for
the first text of each ReasonSeg JSON written in cp1252; never drawn at random."""


@dataclass(frozen=True)
class Noun:
    """A noun phrase: optional colour + optional shape ("red circle", "red shape", "circle", "shape")."""

    colour: str | None = None
    shape: str | None = None

    def matches(self, obj: SceneObject) -> bool:
        return (self.colour is None or obj.colour == self.colour) and (self.shape is None or obj.shape == self.shape)

    def text(self, *, plural: bool = False, paraphrase: bool = False) -> str:
        if self.shape is not None and paraphrase:
            head = PARAPHRASES[self.shape][1 if plural else 0]
        else:
            head = self.shape or "shape"
            head = PLURALS[head] if plural else head
        return f"{self.colour} {head}" if self.colour else head


@dataclass(frozen=True)
class Expression:
    """A referring expression. `selector` is None, one of EXTREMES, SIZES or RELATIONS (then `anchor` is set)."""

    noun: Noun
    selector: str | None = None
    anchor: Noun | None = None
    plural: bool = False

    @property
    def type(self) -> str:
        if self.selector in EXTREMES or self.selector in RELATIONS:
            return "spatial"
        if self.selector in SIZES:
            return "size"
        if self.noun.colour and self.noun.shape:
            return "colour+shape"
        return "colour" if self.noun.colour else "shape"

    def text(self, *, paraphrase: bool = False) -> str:
        noun = self.noun.text(plural=self.plural, paraphrase=paraphrase)
        if self.plural:
            return f"all the {noun}"
        if self.selector is None:
            return f"the {noun}"
        if self.selector in RELATIONS:
            assert self.anchor is not None
            return f"the {noun} {self.selector} the {self.anchor.text(paraphrase=paraphrase)}"
        return f"the {self.selector} {noun}"


def margin_px(width: int, height: int) -> float:
    """Positions closer than this (pixels) count as a tie for spatial words."""
    return max(2.0, 0.05 * min(width, height))


def resolve(expr: Expression, objects: Sequence[SceneObject], margin: float) -> list[int] | None:
    """Indices of every object `expr` could denote (sorted), or None when a relation is vague.

    A singular expression is unambiguous for target t iff this returns [t]; a plural one iff it returns the
    target set; a false premise iff it returns [].
    """
    cands = [o for o in objects if expr.noun.matches(o)]
    if expr.selector is None:
        return sorted(o.index for o in cands)
    if expr.selector in RELATIONS:
        return _resolve_relation(expr, cands, objects, margin)
    if not cands:
        return []
    if expr.selector in EXTREMES:
        axis = "cx" if expr.selector in ("leftmost", "rightmost") else "cy"
        sign = 1.0 if expr.selector in ("leftmost", "topmost") else -1.0
        keys = [sign * getattr(o, axis) for o in cands]
        best = min(keys)
        return sorted(o.index for o, k in zip(cands, keys) if k < best + margin)
    if expr.selector in SIZES:
        if expr.selector == "largest":
            top = max(o.area for o in cands)
            return sorted(o.index for o in cands if o.area * SIZE_RATIO > top)
        low = min(o.area for o in cands)
        return sorted(o.index for o in cands if o.area < low * SIZE_RATIO)
    raise ValueError(f"unknown selector {expr.selector!r}")


def _resolve_relation(expr: Expression, cands: Sequence[SceneObject], objects: Sequence[SceneObject],
                      margin: float) -> list[int] | None:
    anchor = _anchor(expr, objects)
    if anchor is None:
        return None
    out = []
    for o in cands:
        if o.index == anchor.index:
            continue
        d = _offset(expr.selector, o, anchor)
        if abs(d) <= margin:
            return None  # neither clearly in relation nor clearly not
        if d > margin:
            out.append(o.index)
    return sorted(out)


def _anchor(expr: Expression, objects: Sequence[SceneObject]) -> SceneObject | None:
    assert expr.anchor is not None
    found = [o for o in objects if expr.anchor.matches(o)]
    return found[0] if len(found) == 1 else None


def _offset(relation: str, o: SceneObject, anchor: SceneObject) -> float:
    """Signed distance by which `o` satisfies `relation` to `anchor` (positive = satisfied)."""
    return {"left of": anchor.cx - o.cx, "right of": o.cx - anchor.cx,
            "above": anchor.cy - o.cy, "below": o.cy - anchor.cy}[relation]


def unique_nouns(obj: SceneObject, objects: Sequence[SceneObject]) -> list[Noun]:
    """Noun phrases that pick out `obj` alone, shortest first."""
    out = []
    for noun in (Noun(colour=obj.colour), Noun(shape=obj.shape), Noun(colour=obj.colour, shape=obj.shape)):
        if [o.index for o in objects if noun.matches(o)] == [obj.index]:
            out.append(noun)
    return out


def candidates(target: SceneObject, objects: Sequence[SceneObject], margin: float,
               *, spatial: bool = True) -> list[Expression]:
    """Every unambiguous singular expression for `target` the grammar allows (spatial=False drops position words)."""
    nouns = [Noun(), Noun(colour=target.colour), Noun(shape=target.shape),
             Noun(colour=target.colour, shape=target.shape)]
    out: list[Expression] = []
    for noun in nouns[1:]:
        if resolve(Expression(noun), objects, margin) == [target.index]:
            out.append(Expression(noun))
    for noun in nouns:
        n_match = sum(noun.matches(o) for o in objects)
        if n_match < 2:
            continue  # "the leftmost red circle" when there is one red circle says nothing more than "the red circle"
        for sel in (EXTREMES if spatial else ()) + SIZES:
            e = Expression(noun, sel)
            if resolve(e, objects, margin) == [target.index]:
                out.append(e)
    if spatial:
        for other in objects:
            if other.index == target.index:
                continue
            anchors = unique_nouns(other, objects)
            if not anchors:
                continue
            for noun in nouns:
                for rel in RELATIONS:
                    e = Expression(noun, rel, anchors[0])
                    if resolve(e, objects, margin) == [target.index]:
                        out.append(e)
    return out


def plural_candidates(objects: Sequence[SceneObject]) -> list[tuple[Expression, list[int]]]:
    """("all the red shapes", targets) for every colour or shape that appears at least twice."""
    out = []
    nouns = sorted({Noun(colour=o.colour) for o in objects} | {Noun(shape=o.shape) for o in objects},
                   key=lambda n: (n.colour or "", n.shape or ""))
    for noun in nouns:
        idx = [o.index for o in objects if noun.matches(o)]
        if len(idx) >= 2:
            out.append((Expression(noun, plural=True), idx))
    return out


def absent_noun(rng: np.random.Generator, objects: Sequence[SceneObject]) -> Noun:
    """A colour+shape combination no object has (false premises and negatives name it)."""
    present = {(o.colour, o.shape) for o in objects}
    free = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in present]
    c, s = free[int(rng.integers(len(free)))]
    return Noun(colour=c, shape=s)


def false_premise(rng: np.random.Generator, expr: Expression, objects: Sequence[SceneObject],
                  margin: float) -> tuple[Expression, str] | None:
    """Rewrite one element of a true expression so that it matches nothing: (expression, edit) or None.

    edit is "attribute" (the colour changed), "object" (the shape changed) or "relation" (the relation flipped).
    """
    options: list[tuple[Expression, str]] = []
    present_c = {o.colour for o in objects}
    present_s = {o.shape for o in objects}
    for c in COLOURS:
        if c != expr.noun.colour and c not in present_c:
            options.append((replace(expr, noun=Noun(colour=c, shape=expr.noun.shape)), "attribute"))
    for s in SHAPES:
        if s != expr.noun.shape and s not in present_s:
            options.append((replace(expr, noun=Noun(colour=expr.noun.colour, shape=s)), "object"))
    if expr.selector in RELATIONS:
        options.append((replace(expr, selector=OPPOSITE[expr.selector]), "relation"))
    options = [(e, k) for e, k in options if resolve(e, objects, margin) == []]
    if not options:
        return None
    return options[int(rng.integers(len(options)))]


def sentence(rng: np.random.Generator, expr: Expression, template: str | None = None) -> str:
    """A long (is_sentence) query for `expr`: a question template around the paraphrased expression.

    `template` None draws one of SENTENCE_TEMPLATES from `rng`; a given template draws nothing.
    """
    if template is None:
        template = SENTENCE_TEMPLATES[int(rng.integers(len(SENTENCE_TEMPLATES)))]
    return template.format(desc=expr.text(paraphrase=True))


_NOUN_WORDS = {**{p: s for s, p in PLURALS.items()}, **{s: s for s in PLURALS}}


def _parse_noun(text: str) -> tuple[Noun, bool] | None:
    words = text.split()
    if not words or words[-1] not in _NOUN_WORDS or len(words) > 2:
        return None
    head = _NOUN_WORDS[words[-1]]
    plural = words[-1] != head
    colour = words[0] if len(words) == 2 else None
    if colour is not None and colour not in COLOURS:
        return None
    return Noun(colour=colour, shape=None if head == "shape" else head), plural


def _unparaphrase(text: str) -> str:
    pairs = [(p[1], PLURALS[s]) for s, p in PARAPHRASES.items()] + [(p[0], s) for s, p in PARAPHRASES.items()]
    for para, name in sorted(pairs, key=lambda kv: -len(kv[0])):
        text = text.replace(para, name)
    return text


def parse(text: str) -> Expression | None:
    """Inverse of `Expression.text` and `sentence` (returns None for text outside the grammar)."""
    for template in (*SENTENCE_TEMPLATES, APOSTROPHE_TEMPLATE):
        pattern = "^" + re.escape(template).replace(re.escape("{desc}"), "(?P<desc>.+)") + "$"
        m = re.match(pattern, text)
        if m:
            return parse(_unparaphrase(m.group("desc")))
    if m := re.fullmatch(r"all the (.+)", text):
        noun = _parse_noun(m.group(1))
        return Expression(noun[0], plural=True) if noun and noun[1] else None
    if m := re.fullmatch(r"the (" + "|".join(EXTREMES + SIZES) + r") (.+)", text):
        noun = _parse_noun(m.group(2))
        return Expression(noun[0], m.group(1)) if noun and not noun[1] else None
    if m := re.fullmatch(r"the (.+?) (" + "|".join(RELATIONS) + r") the (.+)", text):
        noun, anchor = _parse_noun(m.group(1)), _parse_noun(m.group(3))
        if noun and anchor and not noun[1] and not anchor[1]:
            return Expression(noun[0], m.group(2), anchor[0])
        return None
    if m := re.fullmatch(r"the (.+)", text):
        noun = _parse_noun(m.group(1))
        return Expression(noun[0]) if noun and not noun[1] and noun[0] != Noun() else None
    return None


def pick(rng: np.random.Generator, exprs: Sequence[Expression], k: int, *, relations_first: bool = False
         ) -> list[Expression]:
    """Up to `k` distinct expressions, spreading over types (round-robin over shuffled types). With
    `relations_first`, an expression relating the target to an anchor ("left of the green triangle") is taken first
    when there is one (the random draws are the same either way)."""
    by_type: dict[str, list[Expression]] = {}
    for e in exprs:
        by_type.setdefault(e.type, []).append(e)
    types = sorted(by_type)
    order = rng.permutation(len(types))
    pools = [[by_type[types[i]][j] for j in rng.permutation(len(by_type[types[i]]))] for i in order]
    if relations_first:
        pools = [sorted(pool, key=lambda e: e.selector not in RELATIONS) for pool in pools]
        pools.sort(key=lambda pool: not (pool and pool[0].selector in RELATIONS))
    out: list[Expression] = []
    while len(out) < k and any(pools):
        for pool in pools:
            if pool and len(out) < k:
                out.append(pool.pop(0))
    return out
