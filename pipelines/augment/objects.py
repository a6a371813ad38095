"""The annotated objects of one image as the validation sees them: category, box, and attribute values that the
dataset annotates ("colour": "red" on the synthetic data; real COCO has none) or that the image's true expressions
say ("man in red shirt" says the man's annotation has red)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.augment.vocab import ATTRIBUTE_KINDS, ATTRIBUTE_VALUE

Box = tuple[float, float, float, float]
"""COCO box: x, y, width, height in pixels."""


@dataclass(frozen=True)
class ImageObject:
    """One annotation of the image.

    Attributes:
        ann_id: the annotation id.
        category: its category name (lower case).
        box: its COCO bbox, None when the annotation has none.
        area: its mask area in pixels (COCO `area`), else the box's, else None.
        annotated: (kind, value) pairs the annotation carries as keys named after their kind.
    """

    ann_id: int
    category: str
    box: Box | None = None
    area: float | None = None
    annotated: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    @property
    def cx(self) -> float:
        assert self.box is not None
        return self.box[0] + self.box[2] / 2

    @property
    def cy(self) -> float:
        assert self.box is not None
        return self.box[1] + self.box[3] / 2

    @property
    def bottom(self) -> float:
        """The box's lower edge: the larger, the closer to the camera (the depth proxy for front/behind)."""
        assert self.box is not None
        return self.box[1] + self.box[3]

    @property
    def height(self) -> float:
        assert self.box is not None
        return self.box[3]

    def values(self, kind: str) -> frozenset[str]:
        """The annotated values of `kind`."""
        return frozenset(v for k, v in self.annotated if k == kind)


def object_of_annotation(ann: dict, category: str) -> ImageObject:
    """An instances.json annotation as an ImageObject (attribute keys read as in `annotated_values`)."""
    bbox = ann.get("bbox")
    box = tuple(float(v) for v in bbox) if isinstance(bbox, (list, tuple)) and len(bbox) == 4 else None
    area = ann.get("area")
    area = float(area) if isinstance(area, (int, float)) and area > 0 else (box[2] * box[3] if box else None)
    return ImageObject(ann_id=int(ann["id"]), category=category.lower(), box=box, area=area,
                       annotated=annotated_values(ann))


def annotated_values(ann: dict) -> frozenset[tuple[str, str]]:
    """(kind, value) for each attribute kind the annotation carries as a key named after it ("colour": "red", or
    COCO-style "color"), when the value is a known surface of that kind."""
    out = set()
    for kind in ATTRIBUTE_KINDS:
        surface = ann.get(kind, ann.get("color") if kind == "colour" else None)
        if isinstance(surface, str) and ATTRIBUTE_VALUE.get(surface.lower(), ("", ""))[0] == kind:
            out.add((kind, ATTRIBUTE_VALUE[surface.lower()][1]))
    return frozenset(out)


def margin_of(width: float | None, height: float | None, objects: tuple[ImageObject, ...]) -> float:
    """Positions closer than this (pixels) are a tie: 5% of the image's smaller side (of the boxes' extent when the
    image size is unknown), at least 2 pixels."""
    if not width or not height:
        boxes = [o.box for o in objects if o.box is not None]
        width = max((b[0] + b[2] for b in boxes), default=0.0)
        height = max((b[1] + b[3] for b in boxes), default=0.0)
    return max(2.0, 0.05 * min(width, height))
