"""What one image holds, as the validation needs it: present categories and annotated objects (from
instances.json), the image's true expressions, and what those say about each annotated object."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pipelines.augment.description import describe
from pipelines.augment.lexicon import Lexicon
from pipelines.augment.objects import ImageObject, margin_of, object_of_annotation
from pipelines.augment.text import normalise, words_of
from pipelines.augment.vocab import ATTRIBUTE_VALUE, GENERIC_NOUNS


@dataclass(frozen=True)
class CocoIndex:
    """The parts of a COCO `instances.json` the augmentation needs, small enough to ship to Ray workers.

    Attributes:
        categories: category id -> name.
        image_of_ann: annotation id -> image id.
        category_of_ann: annotation id -> category id.
        image_categories: image id -> names of the categories annotated in it.
        image_attributes: image id -> (kind, value, category) for annotations that carry an attribute as a key
            named after its kind (e.g. the synthetic data's `"colour": "red"`); real COCO has none.
        attribute_values: kind -> the values annotations carry anywhere in the dataset (the dataset's attribute
            vocabulary, e.g. its 7 colours); kinds no annotation carries are absent.
        image_objects: image id -> its annotations (category, box, area, annotated attributes), by annotation id.
        image_sizes: image id -> (width, height) from the images list (absent when it has none).
    """

    categories: dict[int, str]
    image_of_ann: dict[int, int]
    category_of_ann: dict[int, int]
    image_categories: dict[int, frozenset[str]]
    image_attributes: dict[int, frozenset[tuple[str, str, str]]] = field(default_factory=dict)
    attribute_values: dict[str, frozenset[str]] = field(default_factory=dict)
    image_objects: dict[int, tuple[ImageObject, ...]] = field(default_factory=dict)
    image_sizes: dict[int, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def from_instances(cls, instances: dict, *, source: str = "instances.json") -> CocoIndex:
        """Index a parsed instances.json; ValueError naming `source` when a required key is missing."""
        for key in ("annotations", "categories"):
            if key not in instances:
                raise ValueError(f"{source}: has no '{key}' list; is it a COCO instances file?")
        categories = {int(c["id"]): str(c["name"]) for c in instances["categories"]}
        image_of_ann, category_of_ann, per_image, attributes, values, objects = {}, {}, {}, {}, {}, {}
        for ann in instances["annotations"]:
            image_id = int(ann["image_id"])
            image_of_ann[int(ann["id"])] = image_id
            category_of_ann[int(ann["id"])] = int(ann["category_id"])
            name = categories.get(int(ann["category_id"]))
            if name is None:
                raise ValueError(f"{source}: annotation {ann['id']} has unknown category_id {ann['category_id']}")
            per_image.setdefault(image_id, set()).add(name.lower())
            obj = object_of_annotation(ann, name)
            objects.setdefault(image_id, []).append(obj)
            for kind, value in obj.annotated:
                attributes.setdefault(image_id, set()).add((kind, value, name.lower()))
                values.setdefault(kind, set()).add(value)
        sizes = {int(im["id"]): (int(im["width"]), int(im["height"]))
                 for im in instances.get("images", []) if "width" in im and "height" in im}
        return cls(
            categories=categories,
            image_of_ann=image_of_ann,
            category_of_ann=category_of_ann,
            image_categories={k: frozenset(v) for k, v in per_image.items()},
            image_attributes={k: frozenset(v) for k, v in attributes.items()},
            attribute_values={k: frozenset(v) for k, v in values.items()},
            image_objects={k: tuple(sorted(v, key=lambda o: o.ann_id)) for k, v in objects.items()},
            image_sizes=sizes,
        )

    def lexicon(self) -> Lexicon:
        return Lexicon.build(list(self.categories.values()))


@dataclass(frozen=True)
class ImageContext:
    """Facts about one image that a false premise must contradict.

    Attributes:
        lexicon: the dataset's nouns.
        present: category names annotated in the image (lower case).
        true_texts: normalised true expressions of the image.
        attribute_pairs: (kind, value, noun category or surface) seen in the true expressions, e.g.
            ("colour", "blue", "circle") for "the blue circle left of ..."; an attribute edit must not produce one.
        dataset_values: kind -> the dataset's annotated values (`CocoIndex.attribute_values`); empty for data
            without attribute annotations (real COCO).
        image_values: (kind, value) annotated on some object of this image.
        objects: the image's annotations (empty when unknown: then no edit can be verified against the image).
        width, height: the image size in pixels (0 when unknown).
        described: annotation id -> (kind, value) pairs its true expressions give it ("man in red shirt").
    """

    lexicon: Lexicon
    present: frozenset[str]
    true_texts: frozenset[str]
    attribute_pairs: frozenset[tuple[str, str, str]] = field(default_factory=frozenset)
    dataset_values: dict[str, frozenset[str]] = field(default_factory=dict)
    image_values: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    objects: tuple[ImageObject, ...] = ()
    width: int = 0
    height: int = 0
    described: dict[int, frozenset[tuple[str, str]]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        lexicon: Lexicon,
        present: frozenset[str],
        true_texts: list[str],
        annotated: frozenset[tuple[str, str, str]] = frozenset(),
        dataset_values: dict[str, frozenset[str]] | None = None,
        *,
        objects: tuple[ImageObject, ...] = (),
        size: tuple[int, int] | None = None,
        descriptions: Iterable[tuple[int, str]] = (),
    ) -> ImageContext:
        """Context of one image; `annotated` are (kind, value, category) facts from its annotations, which also
        make the (kind, value) true of every generic noun ("a red shape" exists when a red circle does).
        `dataset_values` is the dataset's attribute vocabulary (`CocoIndex.attribute_values`); `objects` and
        `size` the image's annotations and (width, height); `descriptions` its true expressions as (annotation
        id, text), whose head attributes become `described`."""
        pairs = set(annotated)
        pairs.update((kind, value, generic) for kind, value, _ in annotated for generic in GENERIC_NOUNS)
        for text in true_texts:
            pairs.update(attribute_pairs_of(text, lexicon))
        described: dict[int, set[tuple[str, str]]] = {}
        for ann_id, text in descriptions:
            desc = describe(text, lexicon)
            described.setdefault(ann_id, set()).update((a.kind, a.value) for a in desc.attributes_of(desc.head))
        width, height = size or (0, 0)
        return cls(
            lexicon=lexicon,
            present=frozenset(p.lower() for p in present),
            true_texts=frozenset(normalise(t) for t in true_texts),
            attribute_pairs=frozenset(pairs),
            dataset_values=dict(dataset_values or {}),
            image_values=frozenset((kind, value) for kind, value, _ in annotated),
            objects=tuple(objects),
            width=width,
            height=height,
            described={k: frozenset(v) for k, v in described.items()},
        )

    @property
    def margin(self) -> float:
        """Pixels within which two positions tie (`objects.margin_of`)."""
        return margin_of(self.width, self.height, self.objects)

    def object(self, ann_id: int | None) -> ImageObject | None:
        """The annotation `ann_id` of this image, or None."""
        return next((o for o in self.objects if o.ann_id == ann_id), None)

    def attribute_problem(self, kind: str, value: str) -> str | None:
        """Why a false premise may not use attribute `value` of `kind` here, else None.

        Only for kinds the dataset annotates, the way object edits use the dataset's categories absent from the image:
        - "attribute_not_in_dataset": no annotation of the dataset carries `value` ("pink" where the data has 7
          colours and no pink), so the query would be false from its words alone;
        - "attribute_in_image": some object of this image has `value`.
        """
        if kind not in self.dataset_values:
            return None
        if value not in self.dataset_values[kind]:
            return "attribute_not_in_dataset"
        if (kind, value) in self.image_values:
            return "attribute_in_image"
        return None

    @property
    def absent(self) -> tuple[str, ...]:
        """Dataset categories not annotated in the image, sorted."""
        return tuple(c for c in self.lexicon.categories if c not in self.present)


def attribute_pairs_of(text: str, lexicon: Lexicon, *, window: int = 3) -> set[tuple[str, str, str]]:
    """(kind, value, noun) for each attribute word followed within `window` words by a known noun."""
    words = words_of(text)
    nouns = lexicon.nouns_in(words)
    pairs = set()
    for i, w in enumerate(words):
        if w.text not in ATTRIBUTE_VALUE:
            continue
        kind, value = ATTRIBUTE_VALUE[w.text]
        noun = next((n for n in nouns if i < n.start <= i + window), None)
        if noun is not None:
            pairs.add((kind, value, noun_key(noun.category, words, noun.start, noun.end)))
    return pairs


def noun_key(category: str | None, words, start: int, end: int) -> str:
    """The category a noun names, or its own words for a generic noun ("shape")."""
    return category if category is not None else " ".join(w.text for w in words[start:end])
