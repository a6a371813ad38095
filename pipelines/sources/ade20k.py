"""ADE20K (SceneParse150) reader: `<root>/ade20k/images/<training|validation>/*.jpg` + `annotations/.../*.png`.

Label PNGs hold 0 (ignore) and 1..150; class c is `label - 1`. One sample per image with one query per present
class (query_id "<stem>:c<class>", text = class name, query_type "class"); mask = 1 where label == c + 1,
255 where label == 0 (ignore), else 0; `extra["absent_classes"]` lists the classes the label map does not hold
(READ's false premises ask about them). The number of queries is only known after decoding the label PNG, so a
rejected image accounts for 0 queries when its labels cannot be read.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipelines.sources.base import BadImageError, LoadResult, Reject, WorkUnit, read_image
from schemas.sample import Query, ShardSample, make_key

ADE20K_CLASSES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path",
    "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase",
    "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm",
    "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light",
    "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver", "airplane",
    "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster",
    "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool",
    "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
    "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture",
    "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor",
    "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)
"""The 150 SceneParse150 class names, index = label - 1."""

_SPLIT_DIRS = {"train": "training", "val": "validation", "training": "training", "validation": "validation"}


@dataclass(kw_only=True)
class Ade20kSource:
    """Reads one ADE20K split (train|training, val|validation)."""

    dataset: str
    root: str
    split: str

    @property
    def image_dir(self) -> str:
        return os.path.join(self.root, "ade20k", "images", _SPLIT_DIRS.get(self.split, self.split))

    @property
    def label_dir(self) -> str:
        return os.path.join(self.root, "ade20k", "annotations", _SPLIT_DIRS.get(self.split, self.split))

    def check(self) -> None:
        for folder in (self.image_dir, self.label_dir):
            if not os.path.isdir(folder):
                raise ValueError(f"root: {folder} does not exist; point root= at the folder holding ade20k/ "
                                 "(split= train|val)")

    def index(self) -> tuple[list[WorkUnit], list[Reject]]:
        self.check()
        images = {os.path.splitext(n)[0]: n for n in os.listdir(self.image_dir) if n.lower().endswith((".jpg", ".png"))}
        labels = {os.path.splitext(n)[0] for n in os.listdir(self.label_dir) if n.endswith(".png")}
        units, rejects = [], []
        for stem in sorted(images):
            image = os.path.join(self.image_dir, images[stem])
            if stem not in labels:
                rejects.append(Reject(source=image, key=stem, num_queries=0,
                                      reason=f"missing_label: no {stem}.png in {self.label_dir}"))
                continue
            label = os.path.join(self.label_dir, stem + ".png")
            est = os.path.getsize(image) + 20 * os.path.getsize(label) + 8192
            units.append(WorkUnit(key=make_key(stem), source=image, num_queries=None, est_bytes=est,
                                  payload={"image": image, "label": label, "stem": stem}))
        for stem in sorted(labels - set(images)):
            rejects.append(Reject(source=os.path.join(self.label_dir, stem + ".png"), key=stem, num_queries=0,
                                  reason=f"missing_image: label {stem}.png has no image in {self.image_dir}"))
        units.sort(key=lambda u: u.key)
        return units, rejects

    def load(self, unit: WorkUnit) -> LoadResult:
        p = unit.payload
        try:
            data, fmt, height, width = read_image(p["image"])
        except BadImageError as err:
            return LoadResult(rejects=[Reject(source=p["image"], key=unit.key, num_queries=0, reason=str(err))])
        try:
            with open(p["label"], "rb") as f, Image.open(io.BytesIO(f.read())) as img:
                label = np.asarray(img)
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
            return LoadResult(rejects=[Reject(source=p["label"], key=unit.key, num_queries=0,
                                              reason=f"bad_label: {p['label']} cannot be decoded: {err}")])
        if label.ndim != 2 or label.shape != (height, width):
            return LoadResult(rejects=[Reject(source=p["label"], key=unit.key, num_queries=0,
                                              reason=f"bad_label: label is {label.shape}, image is "
                                                     f"({height}, {width})")])
        present = [int(v) for v in np.unique(label) if 1 <= v <= len(ADE20K_CLASSES)]
        ignore = label == 0
        queries = []
        for value in present:
            mask = (label == value).astype(np.uint8)
            mask[ignore] = 255
            queries.append(Query(query_id=f"{p['stem']}:c{value - 1}", text=ADE20K_CLASSES[value - 1],
                                 is_sentence=False, exists=True, mask=mask, query_type="class"))
        if not queries:
            return LoadResult(rejects=[Reject(source=p["label"], key=unit.key, num_queries=0,
                                              reason="no_classes: the label map has no class in 1..150")])
        absent = [name for c, name in enumerate(ADE20K_CLASSES) if c + 1 not in present]
        sample = ShardSample(key=unit.key, dataset=self.dataset, split=self.split, image_bytes=data, image_format=fmt,
                             height=height, width=width, queries=queries, source=p["image"],
                             extra={"absent_classes": absent})
        return LoadResult(sample=sample)
