"""Does a candidate false premise describe an annotated object of the image after all? Three-valued, per object.

Each constraint the candidate puts on its referent (`description`) is judged for every annotated object of the
image as YES, NO or UNKNOWN from what the annotations tell:
- category: the object's category is one the head noun names (a generic head, "shape" or "one", or none names every
  category; so does a generic anchor noun);
- attribute: the value is among the object's annotated values (kinds the dataset annotates); sizes and heights
  ("big", "tall") compare the boxes of a group of two or more; otherwise the values the object's true expressions
  give it decide, taken as all it has of that kind ("man in red shirt" is not in blue, and neither is the "guy in
  white" next to him); an object no expression gives a value of that kind is UNKNOWN;
- side (left guy, on the right, front, middle): from the boxes, among the objects of the head's categories, within
  a tie margin; an object alone in its group is placed against the image halves instead;
- ordinal (second from left): the object's rank in its group along that side, ties making it UNKNOWN;
- relation (behind the bus, left of the car): against each annotated object the anchor noun names (and its
  attributes allow): YES when some anchor is clearly in that relation;
- size (largest, tallest): area or box height against the group's extreme.
An object *fits* when no constraint is NO and the edited one is YES: the candidate is rejected
("describes_annotated_object", or "still_describes_target" when the one object it fits is the true referent). When some object is left with the edited constraint UNKNOWN and nothing NO, the
candidate is kept but not verified. Fronts and backs compare the boxes' lower edges (closer objects reach lower).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.augment.context import ImageContext
from pipelines.augment.description import AttributeMention, Description, Place, describe
from pipelines.augment.objects import ImageObject

YES, NO, UNKNOWN = "yes", "no", "unknown"

AXIS = {"left": ("cx", 1.0), "right": ("cx", -1.0), "top": ("cy", 1.0), "bottom": ("cy", -1.0),
        "front": ("bottom", -1.0), "back": ("bottom", 1.0)}
"""Direction -> (coordinate, sign): the object furthest that way has the smallest sign * coordinate."""
SIZE = {"big": ("area", -1.0), "small": ("area", 1.0), "tall": ("height", -1.0), "short": ("height", 1.0)}
SIZE_TIE, SIZE_CLEAR = 1.15, 1.5
"""A size superlative holds within a factor SIZE_TIE of the group's extreme, fails beyond SIZE_CLEAR."""


def t_and(values: list[str]) -> str:
    return NO if NO in values else (YES if all(v == YES for v in values) else UNKNOWN)


def t_or(values: list[str]) -> str:
    return YES if YES in values else (NO if all(v == NO for v in values) else UNKNOWN)


@dataclass(frozen=True)
class Grounding:
    """The candidate against the image: annotations it fits (reject), ones it may fit (kept, not verified)."""

    fits: tuple[int, ...]
    undecided: tuple[int, ...]
    read: bool
    """False when the edited words are none of the constraints the parser reads (nothing can be verified)."""
    target: int | None = None
    """The annotation the true expression refers to."""

    @property
    def reason(self) -> str | None:
        """"describes_annotated_object" when it fits an object other than the target, "still_describes_target"
        when it fits the target alone (the edit left the expression true: "second from right" -> "second from left"
        of three), else None."""
        if not self.fits:
            return None
        return "still_describes_target" if self.fits == (self.target,) else "describes_annotated_object"

    @property
    def verified(self) -> bool:
        return self.read and not self.fits and not self.undecided


def ground(candidate: str, edited: set[int], ctx: ImageContext, target: int | None) -> Grounding:
    """Judge `candidate`, whose words at indices `edited` are the edit, against every annotated object of `ctx`;
    `target` is the annotation the true expression refers to."""
    desc = describe(candidate, ctx.lexicon)
    element = desc.element_at(edited)
    if element is None or not ctx.objects:
        return Grounding(fits=(), undecided=tuple(o.ann_id for o in ctx.objects), read=False, target=target)
    judge = _Judge(desc, ctx)
    fits, undecided = [], []
    for obj in ctx.objects:
        verdicts = judge.constraints(obj)
        if NO in verdicts.values():
            continue
        (fits if verdicts[id(element)] == YES else undecided).append(obj.ann_id)
    return Grounding(fits=tuple(fits), undecided=tuple(undecided), read=True, target=target)


class _Judge:
    """Verdicts of one description's constraints for the objects of one image."""

    def __init__(self, desc: Description, ctx: ImageContext) -> None:
        self.desc, self.ctx = desc, ctx
        head = desc.head
        every = frozenset(o.category for o in ctx.objects)
        self.group_categories = head.categories if head is not None and not head.generic else every
        self.group = [o for o in ctx.objects if o.category in self.group_categories]
        self.margin = ctx.margin
        self._anchor_cache: dict[int, tuple[list[ImageObject], dict[int, str]]] = {}

    def constraints(self, obj: ImageObject) -> dict[int, str]:
        """id(constraint) -> verdict for `obj`; the head noun's entry is the category check."""
        out: dict[int, str] = {}
        head_key = id(self.desc.head) if self.desc.head is not None else 0
        out[head_key] = YES if obj.category in self.group_categories else NO
        for a in self.desc.attributes_of(self.desc.head):
            out[id(a)] = self.attribute(obj, a, self.group)
        for p in self.desc.places:
            out[id(p)] = self.place(obj, p)
        return out

    def attribute(self, obj: ImageObject, a: AttributeMention, group: list[ImageObject]) -> str:
        """Annotated values decide for kinds the dataset annotates; boxes for size and height ("big", "tall")
        within a group of two or more; else the values the object's true expressions give it, taken as all it has
        of that kind; UNKNOWN for an object they say nothing of that kind about."""
        if a.kind in self.ctx.dataset_values:
            values = obj.values(a.kind)
            if values:
                return YES if a.value in values else NO
        if a.value in SIZE and obj.box is not None:
            boxed = [g for g in group if g.box is not None]
            if len(boxed) >= 2 and len(boxed) == len(group):
                verdict = self.size(obj, a.value, boxed)
                if verdict != UNKNOWN:
                    return verdict
        said = {v for k, v in self.ctx.described.get(obj.ann_id, frozenset()) if k == a.kind}
        if not said:
            return UNKNOWN
        return YES if a.value in said else NO

    def place(self, obj: ImageObject, p: Place) -> str:
        if obj.box is None:
            return UNKNOWN
        if p.kind == "relation":
            return self.relation(obj, p)
        group = [g for g in self.group if g.box is not None]
        if len(group) < len(self.group):
            return UNKNOWN  # some member has no box: its position is unknown
        if p.kind == "side":
            return self.side(obj, p.direction, group)
        if p.kind == "ordinal":
            return self.ordinal(obj, p, group)
        return self.size(obj, p.direction, group)

    def side(self, obj: ImageObject, direction: str, group: list[ImageObject]) -> str:
        m = self.margin
        if direction == "middle":
            if len(group) < 3:
                return UNKNOWN  # "the giraffe in the middle" of two giraffes means the middle of the picture
            at_edge = [self.side(obj, d, group) for d in ("left", "right")]
            return NO if YES in at_edge else (YES if all(v == NO for v in at_edge) else UNKNOWN)
        coord, sign = AXIS[direction]
        if len(group) == 1:
            return self._image_half(obj, direction)
        best = min(sign * getattr(g, coord) for g in group)
        d = sign * getattr(obj, coord) - best
        return YES if d <= m else (NO if d > 2 * m else UNKNOWN)

    def _image_half(self, obj: ImageObject, direction: str) -> str:
        """An object alone in its group is "on the left" when its centre is in the left 40% of the image, not when
        it is in the right 40%; depth words say nothing about a lone object."""
        if direction in ("front", "back"):
            return UNKNOWN
        extent = self.ctx.width if direction in ("left", "right") else self.ctx.height
        if not extent:
            return UNKNOWN
        pos = (obj.cx if direction in ("left", "right") else obj.cy) / extent
        if direction in ("right", "bottom"):
            pos = 1.0 - pos
        return YES if pos <= 0.4 else (NO if pos >= 0.6 else UNKNOWN)

    def ordinal(self, obj: ImageObject, p: Place, group: list[ImageObject]) -> str:
        if p.direction not in AXIS:
            return UNKNOWN
        coord, sign = AXIS[p.direction]
        mine = sign * getattr(obj, coord)
        others = [sign * getattr(g, coord) for g in group if g.ann_id != obj.ann_id]
        before = sum(v < mine - self.margin for v in others)
        tied = sum(abs(v - mine) <= self.margin for v in others)
        if p.rank == before + 1 and tied == 0:
            return YES
        return NO if p.rank < before + 1 or p.rank > before + tied + 1 else UNKNOWN

    def size(self, obj: ImageObject, direction: str, group: list[ImageObject]) -> str:
        coord, sign = SIZE[direction]
        values = [getattr(g, coord) for g in group]
        mine = getattr(obj, coord)
        if not mine or not all(values):
            return UNKNOWN
        ratio = max(values) / mine if sign < 0 else mine / min(values)  # >= 1: how far from the extreme
        return YES if ratio <= SIZE_TIE else (NO if ratio > SIZE_CLEAR else UNKNOWN)

    def relation(self, obj: ImageObject, p: Place) -> str:
        if p.anchor is None or p.direction not in AXIS:
            return UNKNOWN
        group, fits = self._anchors(p)
        return t_or([t_and([fits[a.ann_id], self._offset(obj, a, p.direction)])
                     for a in group if a.ann_id != obj.ann_id])

    def _anchors(self, p: Place) -> tuple[list[ImageObject], dict[int, str]]:
        """The objects the anchor noun names and, per object, whether the anchor's attributes fit it (the same for
        every object judged, so computed once per place)."""
        key = id(p)
        if key not in self._anchor_cache:
            named = p.anchor.categories
            group = [a for a in self.ctx.objects if not named or a.category in named]
            fits = {a.ann_id: t_and([self.attribute(a, m, group) for m in self.desc.attributes_of(p.anchor)])
                    for a in group}
            self._anchor_cache[key] = (group, fits)
        return self._anchor_cache[key]

    def _offset(self, obj: ImageObject, anchor: ImageObject, direction: str) -> str:
        if anchor.box is None:
            return UNKNOWN
        coord, sign = AXIS[direction]
        d = sign * (getattr(anchor, coord) - getattr(obj, coord))
        return YES if d > self.margin else (NO if d < -self.margin else UNKNOWN)
