"""PASCAL-Part and PACO-LVIS readers: COCO-format part annotations (`categories` named "object:part"), one query per
ANNOTATION.

Layouts (READ's `init_pascal_part` / `init_paco_lvis` and `SemSegDataset.__getitem__`, dataloaders/sem_seg_dataset.py,
rui-qian/READ; the LISA/READ data guide puts both under `vlpart/`):
- pascal_part: `vlpart/pascal_part/<split>.json` (VLPart's train.json), images
  `vlpart/pascal_part/VOCdevkit/VOC2010/JPEGImages/<file_name>`;
- paco_lvis: `vlpart/paco/annotations/paco_lvis_v1_<split>.json`, images `coco/<file_name>` (file_name holds
  `train2017/...`).

Matched from READ:
- category names: PASCAL-Part `name.strip().split(":")` -> (object, part), exactly two pieces; PACO-LVIS
  `name.strip().split(":")`, each piece cut at its first "_(" (underscores kept: "trash_can"), one piece -> an object
  category, two -> (object, part);
- one sample per image, one query per annotation of the image (`getAnnIds(imgIds=...)`, file order): two eyes give
  two queries, each with its own mask, decoded as pycocotools `annToMask` decodes it (polygons merged, uncompressed or
  compressed RLE; `pipelines.sources.refer.decode_segmentation`, clipped to 0/1), no ignore label;
- an image without annotations is skipped (READ re-draws; here a `no_annotations` reject of 0 queries);
- `extra["absent_classes"]`: the categories with no annotation on the image (READ's `neg_anns`), by category id: an
  object category's name, or an [object, part] pair.

Query: id "<stem>:a<ann_id>", `ann_id`, `query_type` "part" for (object, part) categories and "class" for PACO-LVIS
object categories, `extra` {"category_id", "object"[, "part"]}.

Where this reader chooses otherwise, and why:
- text of an (object, part) category: READ draws "<object> <part>" or "the <part> of the <object>" at random for
  every question; a deterministic reader stores one canonical text, "the <part> of the <object>", and both names in
  `extra`, from which the training loader redraws READ's two forms (`pipelines.data.conversation`). That form is
  the unambiguous noun phrase and reads as English inside this project's question templates ("Can you segment the
  wheel of the car ...?"), where "car wheel" would lack its article;
- READ re-draws the whole image when one `annToMask` fails and crashes on an unknown category id or a malformed
  category name; here only that annotation is rejected (`bad_polygon`, `bad_rle`, `bad_segmentation`,
  `empty_segmentation`, `unknown_category`, `bad_category`, `duplicate_ann_id`), one query each, and the image keeps
  its other annotations. An empty segmentation list (`annToMask` raises IndexError) is `empty_segmentation`;
- an absent category whose text equals a present query's text (PACO names cut at "_(" can coincide) is not listed as
  absent, so a false premise never denies what the image shows;
- images whose recorded height/width is not the decoded (EXIF-upright) size are rejected (`size_mismatch`), all
  their annotations counted.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pipelines.sources.base import BadImageError, LoadResult, Reject, WorkUnit, estimate_bytes, read_image
from pipelines.sources.refer import is_integer_id, decode_segmentation
from schemas.sample import Query, ShardSample, make_key

PART_DATASETS = ("pascal_part", "paco_lvis")


def pascal_part_name(name: str) -> tuple[str, str]:
    """READ's PASCAL-Part category naming: "aeroplane:body" -> ("aeroplane", "body"). Raises ValueError unless the
    name splits into exactly two non-empty pieces at ":"."""
    pieces = name.strip().split(":")
    if len(pieces) != 2 or not all(pieces):
        raise ValueError(f"PASCAL-Part category names are 'object:part', got {name!r}")
    return pieces[0], pieces[1]


def paco_lvis_name(name: str) -> str | tuple[str, str]:
    """READ's PACO-LVIS category naming: "car_(automobile):wheel" -> ("car", "wheel"); "trash_can" -> "trash_can".
    Raises ValueError for more than one ":" or an empty piece."""
    pieces = [piece.split("_(")[0] for piece in name.strip().split(":")]
    if len(pieces) > 2 or not all(pieces):
        raise ValueError(f"PACO-LVIS category names are 'object' or 'object:part', got {name!r}")
    return pieces[0] if len(pieces) == 1 else (pieces[0], pieces[1])


def category_query(category_id: int, name: str | tuple[str, str]) -> dict[str, Any]:
    """The query fields of a named category: text, query_type and extra (see the module docstring)."""
    if isinstance(name, tuple):
        obj, part = name
        return {"text": f"the {part} of the {obj}", "query_type": "part",
                "extra": {"category_id": category_id, "object": obj, "part": part}}
    return {"text": name, "query_type": "class", "extra": {"category_id": category_id, "object": name}}


@dataclass(kw_only=True)
class CocoPartsSource:
    """Reads one split of PASCAL-Part or PACO-LVIS (`dataset`). The category table is built by `index()` and travels
    with the source to the workers (each unit carries its digest); the annotations travel in the units."""

    dataset: str
    root: str
    split: str
    _categories: dict[int, dict[str, Any]] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.dataset not in PART_DATASETS:
            raise ValueError(f"dataset: CocoPartsSource reads {list(PART_DATASETS)}, got {self.dataset!r}")

    @property
    def json_path(self) -> str:
        if self.dataset == "pascal_part":
            return os.path.join(self.root, "vlpart", "pascal_part", f"{self.split}.json")
        return os.path.join(self.root, "vlpart", "paco", "annotations", f"paco_lvis_v1_{self.split}.json")

    @property
    def image_root(self) -> str:
        if self.dataset == "pascal_part":
            return os.path.join(self.root, "vlpart", "pascal_part", "VOCdevkit", "VOC2010", "JPEGImages")
        return os.path.join(self.root, "coco")

    def check(self) -> None:
        """Raise ValueError naming the missing annotation file or image folder (a configuration error)."""
        for path, isdir in ((self.json_path, False), (self.image_root, True)):
            if not (os.path.isdir(path) if isdir else os.path.isfile(path)):
                raise ValueError(f"root: {path} does not exist; point root= at the folder holding "
                                 f"{os.path.relpath(path, self.root)} (split={self.split})")

    def name_category(self, name: str) -> str | tuple[str, str]:
        return pascal_part_name(name) if self.dataset == "pascal_part" else paco_lvis_name(name)

    def index(self) -> tuple[list[WorkUnit], list[Reject]]:
        self.check()
        path = self.json_path
        where = os.path.basename(path)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            return [], [Reject(source=path, key=where, num_queries=0,
                               reason=f"bad_json: {path} is not readable JSON ({type(err).__name__}: {err}); its "
                                      "queries cannot be counted")]
        if not isinstance(data, dict) or not all(isinstance(data.get(k), list)
                                                 for k in ("images", "annotations", "categories")):
            anns = data.get("annotations") if isinstance(data, dict) else None
            held = len(anns) if isinstance(anns, list) else 0
            return [], [Reject(source=path, key=where, num_queries=held,
                               reason=f"bad_json: {path} must be a COCO object with 'images', 'annotations' and "
                                      "'categories' lists")]
        rejects: list[Reject] = []
        categories, bad_categories = self._read_categories(data["categories"], path, rejects)
        self._categories = categories
        images, bad_images = _read_images(data["images"], path, rejects)

        by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
        seen_anns: set[int] = set()
        referenced: set[int] = set()  # images some annotation record points to, usable or not
        for i, ann in enumerate(data["annotations"]):
            if isinstance(ann, dict) and is_integer_id(ann.get("image_id")):
                referenced.add(int(ann["image_id"]))
            ann_id = ann.get("id") if isinstance(ann, dict) else None
            key = f"annotation {ann_id}" if is_integer_id(ann_id) else f"annotation #{i}"
            problem = ""
            if not isinstance(ann, dict) or not is_integer_id(ann_id) or "segmentation" not in ann:
                problem = f"bad_annotation: {key} needs an integer 'id' and a 'segmentation'"
            elif ann_id in seen_anns:
                problem = f"duplicate_ann_id: {key} appears more than once in {where}"
            elif not is_integer_id(ann.get("image_id")) or ann["image_id"] not in images:
                image_id = ann.get("image_id")
                known = bad_images.get(image_id) if is_integer_id(image_id) else None
                problem = f"{known} ({key})" if known else (f"unknown_image_id: {key} points to image {image_id!r}, "
                                                            f"absent from {where}")
            elif not is_integer_id(ann.get("category_id")) or ann["category_id"] not in categories:
                cat_id = ann.get("category_id")
                known = bad_categories.get(cat_id) if is_integer_id(cat_id) else None
                problem = f"{known} ({key})" if known else (f"unknown_category: {key} has category_id {cat_id!r}, "
                                                            f"absent from the categories of {where}")
            if problem:
                rejects.append(Reject(source=path, key=key, num_queries=1, reason=problem))
                continue
            seen_anns.add(int(ann_id))
            by_image[int(ann["image_id"])].append(
                {"id": int(ann_id), "category_id": int(ann["category_id"]), "segmentation": ann["segmentation"]})

        digest = hashlib.sha256(json.dumps(sorted(categories.items()), sort_keys=True).encode()).hexdigest()[:16]
        absent_bytes = len(json.dumps([c["text"] for c in categories.values()]))
        units: list[WorkUnit] = []
        keys: dict[str, int] = {}
        for image_id in sorted(images):
            info = images[image_id]
            anns = by_image.get(image_id, [])
            image = os.path.join(self.image_root, info["file_name"])
            stem = os.path.splitext(os.path.basename(info["file_name"]))[0]
            key = make_key(stem)
            if not anns:
                if image_id in referenced:
                    continue  # its annotations are all rejected already, each naming why
                rejects.append(Reject(source=image, key=key, num_queries=0,
                                      reason=f"no_annotations: image {image_id} ({info['file_name']}) has no "
                                             f"annotation in {where}"))
                continue
            if key in keys:
                rejects.append(Reject(source=image, key=key, num_queries=len(anns),
                                      reason=f"duplicate_image: image {image_id} ({info['file_name']}) gives the "
                                             f"sample key {key} of image {keys[key]}"))
                continue
            keys[key] = image_id
            try:
                file_bytes = os.path.getsize(image)
            except OSError:
                file_bytes = 0  # load() rejects it with the precise reason
            units.append(WorkUnit(
                key=key, source=image, num_queries=len(anns),
                est_bytes=estimate_bytes(file_bytes, info["height"], info["width"], len(anns)) + absent_bytes,
                payload={"image": image, "image_id": image_id, "height": info["height"], "width": info["width"],
                         "stem": stem, "anns": anns, "categories": digest},
            ))
        units.sort(key=lambda u: u.key)
        return units, rejects

    def _read_categories(
        self, records: list[Any], path: str, rejects: list[Reject]
    ) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
        """Valid categories {id: query fields} in id order, and {id: reject reason} of unusable ones (their
        annotations are rejected with it). Records without an integer id are rejected here (0 queries)."""
        categories: dict[int, dict[str, Any]] = {}
        bad: dict[int, str] = {}
        for i, cat in enumerate(records):
            cat_id = cat.get("id") if isinstance(cat, dict) else None
            if not is_integer_id(cat_id):
                rejects.append(Reject(source=path, key=f"category #{i}", num_queries=0,
                                      reason=f"bad_category: category record #{i} has no integer 'id'"))
                continue
            try:
                name = cat.get("name")
                if not isinstance(name, str):
                    raise ValueError(f"its name is {name!r}")
                if int(cat_id) in categories or int(cat_id) in bad:
                    raise ValueError("its id appears more than once")
                categories[int(cat_id)] = category_query(int(cat_id), self.name_category(name))
            except ValueError as err:
                bad[int(cat_id)] = f"bad_category: category {cat_id} of {os.path.basename(path)} is unusable: {err}"
                categories.pop(int(cat_id), None)
        return dict(sorted(categories.items())), bad

    def category_table(self) -> dict[int, dict[str, Any]]:
        """{category id: query fields}; built by `index()` (re-read from the JSON when this copy never indexed)."""
        if self._categories is None:
            self.index()
        assert self._categories is not None
        return self._categories

    def load(self, unit: WorkUnit) -> LoadResult:
        p = unit.payload
        n = unit.num_queries or 0
        try:
            data, fmt, height, width = read_image(p["image"], recorded=(p["height"], p["width"]),
                                                  recorded_by=os.path.basename(self.json_path))
        except BadImageError as err:
            return LoadResult(rejects=[Reject(source=p["image"], key=unit.key, num_queries=n, reason=str(err))])
        table = self.category_table()
        queries, rejects = [], []
        for ann in p["anns"]:
            where = f"annotation {ann['id']} of image {p['image_id']} in {self.json_path}"
            try:
                if isinstance(ann["segmentation"], list) and not ann["segmentation"]:
                    raise ValueError("empty_segmentation: the segmentation is an empty list (pycocotools annToMask "
                                     "cannot decode it)")
                mask = decode_segmentation(ann["segmentation"], height, width)
            except ValueError as err:
                rejects.append(Reject(source=self.json_path, key=f"{unit.key}:a{ann['id']}", num_queries=1,
                                      reason=f"{err} ({where})"))
                continue
            fields = table[ann["category_id"]]
            queries.append(Query(query_id=f"{p['stem']}:a{ann['id']}", text=fields["text"], is_sentence=False,
                                 exists=True, mask=mask, query_type=fields["query_type"], ann_id=ann["id"],
                                 extra=dict(fields["extra"])))
        if not queries:
            return LoadResult(rejects=rejects)
        present_ids = {ann["category_id"] for ann in p["anns"]}
        present_texts = {q.text for q in queries}
        absent = [_absent_name(c) for cid, c in table.items()
                  if cid not in present_ids and c["text"] not in present_texts]
        sample = ShardSample(key=unit.key, dataset=self.dataset, split=self.split, image_bytes=data, image_format=fmt,
                             height=height, width=width, queries=queries, source=p["image"],
                             extra={"image_id": p["image_id"], "absent_classes": absent})
        return LoadResult(sample=sample, rejects=rejects)


def _absent_name(fields: dict[str, Any]) -> str | list[str]:
    """An absent category as `extra["absent_classes"]` lists it: the object name, or [object, part] (the loader draws
    READ's two phrasings of a part from the pair)."""
    extra = fields["extra"]
    return [extra["object"], extra["part"]] if "part" in extra else fields["text"]


def _read_images(records: list[Any], path: str, rejects: list[Reject]) -> tuple[dict[int, dict[str, Any]],
                                                                                   dict[int, str]]:
    """Valid image records {id: {file_name, height, width}} and {id: reject reason} of malformed ones (their
    annotations are rejected with it). Records without an integer id are rejected here (0 queries)."""
    images: dict[int, dict[str, Any]] = {}
    bad: dict[int, str] = {}
    where = os.path.basename(path)
    for i, im in enumerate(records):
        image_id = im.get("id") if isinstance(im, dict) else None
        if not is_integer_id(image_id):
            rejects.append(Reject(source=path, key=f"image #{i}", num_queries=0,
                                  reason=f"bad_image_record: image record #{i} of {where} has no integer 'id'"))
            continue
        image_id = int(image_id)
        fine = (isinstance(im.get("file_name"), str) and im["file_name"]
                and all(is_integer_id(im.get(k)) and im[k] > 0 for k in ("height", "width")))
        if image_id in images or image_id in bad:
            bad[image_id] = f"bad_image_record: image {image_id} appears more than once in {where}"
            images.pop(image_id, None)
        elif not fine:
            bad[image_id] = (f"bad_image_record: image {image_id} of {where} needs a 'file_name' and positive integer "
                             "'height' and 'width'")
        else:
            images[image_id] = {"file_name": im["file_name"], "height": int(im["height"]), "width": int(im["width"])}
    return images, bad
