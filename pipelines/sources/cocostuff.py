"""COCO-Stuff reader (`cocostuff/train2017/*.png` label maps over `coco/train2017/*.jpg`), and the label-map reader
it shares with Mapillary (`LabelMapSource`).

READ's `init_cocostuff` / `SemSegDataset.__getitem__` (dataloaders/sem_seg_dataset.py, rui-qian/READ), matched here:
- the label maps are the files listed, `cocostuff/<split>2017/<stem>.png`; the image of each is the same path with
  `.png` -> `.jpg` and `cocostuff` -> `coco` (`coco/train2017/<stem>.jpg`). Images without a label map are not part
  of the dataset (coco/train2017 is shared with LLaVA and PACO-LVIS), so they are not rejected;
- the classes are READ's `dataloaders/cocostuff_classes.txt` without its first line ("0: unlabeled"), so label value
  v is class `COCOSTUFF_CLASSES[v]` (0 = person ... 181 = wood, the 0-based stuffthingmaps of COCO-Stuff-164k).
  READ's list names value 156 "sky" (COCO-Stuff's own "sky-other"), so "sky" has no "-" and is a class;
- 255 is ignored, and so is every class whose name contains "-" (READ sets those pixels to its ignore label 255:
  "wall-other", "building-other", ...): they are never queries, and their pixels are 255 in every mask;
- one query per remaining present value, text = the list's name as is ("sky", "traffic light"; READ lower-cases
  when it writes the question), mask = 1 where label == v, 255 on ignored pixels, else 0.

Where this reader chooses otherwise, and why:
- `extra["absent_classes"]` (READ's false-premise classes) lists the classes whose value does not occur in the raw
  label map. READ draws from every class not left after ignoring, which includes the "-" classes present in the image
  (READ would deny "wall-other" on an image showing it); a present class is never offered as absent here;
- a label value outside 0..181 that is not 255 (READ: IndexError) rejects the image (`unknown_class`), as does a label
  map whose size is not the image's (READ would compare misaligned pixels). Their rejects count the classes the label
  map held (each would have been a query); an undecodable label map counts 0.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipelines.sources.base import BadImageError, LoadResult, Reject, WorkUnit, read_image
from schemas.sample import Query, ShardSample, make_key

COCOSTUFF_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "street sign", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep",
    "cow", "elephant", "bear", "zebra", "giraffe", "hat", "backpack", "umbrella", "shoe", "eye glasses", "handbag",
    "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "plate", "wine glass", "cup", "fork", "knife", "spoon",
    "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake",
    "chair", "couch", "potted plant", "bed", "mirror", "dining table", "window", "desk", "toilet", "door", "tv",
    "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator",
    "blender", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush", "hair brush", "banner",
    "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage", "cardboard", "carpet", "ceiling-other",
    "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard", "curtain", "desk-stuff", "dirt", "door-stuff",
    "fence", "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood", "flower", "fog", "food-other",
    "fruit", "furniture-other", "grass", "gravel", "ground-other", "hill", "house", "leaves", "light", "mat", "metal",
    "mirror-stuff", "moss", "mountain", "mud", "napkin", "net", "paper", "pavement", "pillow", "plant-other",
    "plastic", "platform", "playingfield", "railing", "railroad", "river", "road", "rock", "roof", "rug", "salad",
    "sand", "sea", "shelf", "sky", "skyscraper", "snow", "solid-other", "stairs", "stone", "straw", "structural-other",
    "table", "tent", "textile-other", "towel", "tree", "vegetable", "wall-brick", "wall-concrete", "wall-other",
    "wall-panel", "wall-stone", "wall-tile", "wall-wood", "water-other", "waterdrops", "window-blind", "window-other",
    "wood",
)
"""READ's COCO-Stuff class names (rui-qian/READ `dataloaders/cocostuff_classes.txt`, lines 2..183 "v: name" read as
READ's `init_cocostuff` does, `line.strip().split(": ")[-1]`): index = label value."""

IGNORE = 255
"""The ignore label of the label maps (READ's `ignore_label`), 255 in masks too."""


def classes_digest(classes: tuple[str, ...]) -> str:
    """A short digest of a class list, put in every work unit so that a changed list never reuses a finished shard."""
    return hashlib.sha256(json.dumps(list(classes)).encode()).hexdigest()[:16]


def decode_label_map(path: str) -> np.ndarray:
    """A label PNG as READ reads it (`np.array(Image.open(path))`: palette images give their indices), 2-D integers.

    Raises:
        ValueError: "bad_label: ..." naming the file (unreadable, not an image, not one integer channel).
    """
    try:
        with open(path, "rb") as f, Image.open(io.BytesIO(f.read())) as img:
            label = np.asarray(img)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise ValueError(f"bad_label: {path} cannot be decoded ({type(err).__name__}: {err})") from err
    if label.ndim != 2 or label.dtype.kind not in "ui":
        raise ValueError(f"bad_label: {path} is {label.dtype} {label.shape}; a label map has one integer channel")
    return label


@dataclass(kw_only=True)
class LabelMapSource:
    """A dataset of label PNGs (pixel value = class index) over images: COCO-Stuff and Mapillary Vistas.

    One sample per label map, one query "<stem>:c<v>" per present class value v (query_type "class"), in value order;
    `extra["absent_classes"]` lists the classes whose value the label map does not hold. Subclasses give the
    folders, the class list and the values READ ignores. The class list is read once by `index()` and travels with
    the source to the workers; each unit carries its digest.

    Accounting: a unit's queries are known only once its label map is decoded (`num_queries` None). The label map is
    decoded before the image, so a reject after that (unknown value, missing or corrupt image, size mismatch) counts
    the classes the map held; a label map without an image (found by `index()`) or one that cannot be decoded
    counts 0.
    """

    dataset: str
    root: str
    split: str
    _classes: tuple[str, ...] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def label_dir(self) -> str:
        raise NotImplementedError

    @property
    def image_dir(self) -> str:
        raise NotImplementedError

    layout = ""
    """The expected layout, for configuration errors."""

    def read_classes(self) -> tuple[str, ...]:
        """The class names, index = label value. Raises ValueError ("bad_config: ...") when they cannot be read."""
        raise NotImplementedError

    @property
    def classes_source(self) -> str:
        """Where the class list comes from (named in rejects)."""
        raise NotImplementedError

    def ignored_values(self, classes: tuple[str, ...]) -> frozenset[int]:
        """Label values that are never queries and are 255 in masks (READ's ignore label)."""
        return frozenset({IGNORE})

    def check(self) -> None:
        """Raise ValueError naming the missing folder (a configuration error, not bad data)."""
        for folder in (self.label_dir, self.image_dir):
            if not os.path.isdir(folder):
                raise ValueError(f"root: {folder} does not exist; point root= at the folder holding {self.layout} "
                                 f"(split={self.split})")

    def classes(self) -> tuple[str, ...]:
        """The class list (read once, then cached). Raises ValueError as `read_classes`."""
        if self._classes is None:
            self._classes = tuple(self.read_classes())
        return self._classes

    def index(self) -> tuple[list[WorkUnit], list[Reject]]:
        self.check()
        try:
            classes = self.classes()
        except ValueError as err:
            return [], [Reject(source=self.classes_source, key=os.path.basename(self.classes_source), num_queries=0,
                               reason=f"{err} (the label maps' queries cannot be counted)")]
        digest = classes_digest(classes)
        absent_bytes = len(json.dumps(list(classes)))
        units, rejects, keys = [], [], {}
        for name in sorted(n for n in os.listdir(self.label_dir) if n.endswith(".png")):
            stem = name[: -len(".png")]
            label = os.path.join(self.label_dir, name)
            image = os.path.join(self.image_dir, stem + ".jpg")
            key = make_key(stem)
            if not os.path.isfile(image):
                rejects.append(Reject(source=label, key=stem, num_queries=0,
                                      reason=f"missing_image: label map {name} has no image {image}"))
                continue
            if key in keys:
                rejects.append(Reject(source=label, key=stem, num_queries=0,
                                      reason=f"duplicate_key: {name} and {keys[key]} both give sample key {key}"))
                continue
            keys[key] = name
            est = os.path.getsize(image) + 20 * os.path.getsize(label) + absent_bytes + 8192
            units.append(WorkUnit(key=key, source=label, num_queries=None, est_bytes=est,
                                  payload={"image": image, "label": label, "stem": stem, "classes": digest}))
        return units, rejects

    def load(self, unit: WorkUnit) -> LoadResult:
        p = unit.payload
        classes = self.classes()
        try:
            label = decode_label_map(p["label"])
        except ValueError as err:
            return LoadResult(rejects=[Reject(source=p["label"], key=unit.key, num_queries=0, reason=str(err))])
        ignored = self.ignored_values(classes)
        values = [int(v) for v in np.unique(label)]
        held = [v for v in values if v not in ignored]  # each is a query (READ's unique_label)
        unknown = [v for v in held if v >= len(classes)]
        if unknown:
            return LoadResult(rejects=[Reject(
                source=p["label"], key=unit.key, num_queries=len(held),
                reason=f"unknown_class: {p['label']} holds values {unknown}, outside the {len(classes)} classes of "
                       f"{self.classes_source} (0..{len(classes) - 1}, {IGNORE} ignored)")])
        try:
            data, fmt, height, width = read_image(p["image"])
        except BadImageError as err:
            return LoadResult(rejects=[Reject(source=p["image"], key=unit.key, num_queries=len(held),
                                              reason=str(err))])
        if label.shape != (height, width):
            return LoadResult(rejects=[Reject(
                source=p["label"], key=unit.key, num_queries=len(held),
                reason=f"size_mismatch: label map {p['label']} is {label.shape[0]}x{label.shape[1]} (HxW), its image "
                       f"{p['image']} decodes (EXIF applied) to {height}x{width}; the masks would not line up")])
        if not held:
            return LoadResult(rejects=[Reject(source=p["label"], key=unit.key, num_queries=0,
                                              reason=f"no_classes: {p['label']} holds only ignored values {values}")])
        ignore = np.isin(label, sorted(ignored))
        queries = []
        for v in held:
            mask = (label == v).astype(np.uint8)
            mask[ignore] = IGNORE
            queries.append(Query(query_id=f"{p['stem']}:c{v}", text=classes[v], is_sentence=False, exists=True,
                                 mask=mask, query_type="class"))
        present = set(values)
        absent = [name for v, name in enumerate(classes) if v not in present]
        sample = ShardSample(key=unit.key, dataset=self.dataset, split=self.split, image_bytes=data, image_format=fmt,
                             height=height, width=width, queries=queries, source=p["image"],
                             extra={"absent_classes": absent})
        return LoadResult(sample=sample)


_SPLIT_DIRS = {"train": "train2017", "val": "val2017"}


@dataclass(kw_only=True)
class CocoStuffSource(LabelMapSource):
    """Reads `<root>/cocostuff/<split>2017/*.png` over `<root>/coco/<split>2017/*.jpg` (split train|val)."""

    layout = "cocostuff/train2017/*.png and coco/train2017/*.jpg"

    @property
    def label_dir(self) -> str:
        return os.path.join(self.root, "cocostuff", _SPLIT_DIRS.get(self.split, self.split))

    @property
    def image_dir(self) -> str:
        return os.path.join(self.root, "coco", _SPLIT_DIRS.get(self.split, self.split))

    @property
    def classes_source(self) -> str:
        return "READ's dataloaders/cocostuff_classes.txt (pipelines.sources.cocostuff.COCOSTUFF_CLASSES)"

    def read_classes(self) -> tuple[str, ...]:
        return COCOSTUFF_CLASSES

    def ignored_values(self, classes: tuple[str, ...]) -> frozenset[int]:
        return frozenset({IGNORE, *(v for v, name in enumerate(classes) if "-" in name)})
