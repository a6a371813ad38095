"""A hand-written set of referring expressions over box layouts (e.g. tests/data/refcoco_style_expressions.json),
turned into what the augmentation reads: a COCO instances.json, one ShardSample per image, and a REFER tree.

JSON layout:
    {"source": "...", "images": [{"id": 1, "size": [640, 480], "scene": "...",
        "objects": [{"id": 101, "category": "person", "box": [x, y, w, h],
                     "truth": {"colour": ["red", "blue"], "pose": ["standing"]},
                     "refs": ["left guy", "man in red shirt"]}, ...]}, ...],
     "probes": [{"image": 1, "object": 102, "text": "lady on right", "variant": "lady on left",
                 "edit": "relation", "expect": "describes"}, ...]}

`truth` holds what a person sees in the picture beyond the annotations (every value of the kinds the set's
expressions use); the instances.json written from it has categories and boxes only, as real COCO does, and the
audit (`audit`) judges variants against the truth. `probes` are hand-judged edits: "describes" (true of some object,
must be rejected), "false" (must be kept and verified) or "undecided" (kept, not verified).
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.augment.nouns_coco import COCO_NOUNS
from schemas.sample import Query, ShardSample

COCO_CATEGORIES: tuple[str, ...] = tuple(COCO_NOUNS)
"""COCO's 80 category names, in id order (id = index + 1)."""


@dataclass(frozen=True)
class Probe:
    """A hand-judged edit: `variant` of `text` (about annotation `object` of `image`) is `expect`."""

    image: int
    object: int
    text: str
    variant: str
    edit: str
    expect: str


@dataclass(frozen=True)
class ExpressionSet:
    """A loaded expression set (module docstring)."""

    data: dict
    source: str

    @classmethod
    def load(cls, path: str | Path) -> ExpressionSet:
        """Read and check the JSON at `path`; ValueError naming the file and the problem."""
        data = json.loads(Path(path).read_text())
        for image in data.get("images", []):
            for obj in image.get("objects", []):
                if obj.get("category") not in COCO_CATEGORIES:
                    raise ValueError(f"{path}: object {obj.get('id')} has category {obj.get('category')!r}, "
                                     "not a COCO category")
                if len(obj.get("box", ())) != 4:
                    raise ValueError(f"{path}: object {obj['id']} needs a box [x, y, w, h]")
        return cls(data=data, source=str(path))

    @property
    def images(self) -> list[dict]:
        return self.data["images"]

    @property
    def probes(self) -> list[Probe]:
        return [Probe(**p) for p in self.data.get("probes", [])]

    def expressions(self) -> list[tuple[int, int, str]]:
        """(image id, annotation id, text) of every expression."""
        return [(im["id"], o["id"], t) for im in self.images for o in im["objects"] for t in o.get("refs", [])]

    def truth(self) -> dict[int, frozenset[tuple[str, str]]]:
        """Annotation id -> its (kind, value) truth."""
        return {o["id"]: frozenset((k, v) for k, vs in o.get("truth", {}).items() for v in vs)
                for im in self.images for o in im["objects"]}

    def instances(self) -> dict:
        """COCO instances.json of the set: images, annotations (category, bbox, area; no attributes)."""
        images = [{"id": im["id"], "file_name": f"COCO_train2014_{im['id']:012d}.jpg", "width": im["size"][0],
                   "height": im["size"][1]} for im in self.images]
        annotations = [{"id": o["id"], "image_id": im["id"], "category_id": COCO_CATEGORIES.index(o["category"]) + 1,
                        "bbox": [float(v) for v in o["box"]], "area": float(o["box"][2] * o["box"][3]),
                        "iscrowd": 0, "segmentation": [_box_polygon(o["box"])]}
                       for im in self.images for o in im["objects"]]
        categories = [{"id": k + 1, "name": name, "supercategory": ""} for k, name in enumerate(COCO_CATEGORIES)]
        return {"images": images, "annotations": annotations, "categories": categories}

    def samples(self, *, dataset: str = "refcoco", split: str = "train") -> list[ShardSample]:
        """One ShardSample per image whose queries are the expressions ("<ref>:<sent>" ids, box masks)."""
        out = []
        for im in self.images:
            width, height = im["size"]
            queries = []
            for obj in im["objects"]:
                mask = _box_mask(obj["box"], width, height)
                queries += [Query(query_id=f"{obj['id']}:{obj['id'] * 10 + k}", text=t, mask=mask, ann_id=obj["id"])
                            for k, t in enumerate(obj.get("refs", []))]
            if queries:
                out.append(ShardSample(key=f"img{im['id']}", dataset=dataset, split=split, image_bytes=b"\xff\xd8",
                                       image_format="jpeg", height=height, width=width, queries=queries,
                                       source=self.source, extra={"image_id": im["id"]}))
        return out

    def write_refer(self, root: str | Path, *, dataset: str = "refcoco", split: str = "train",
                    split_by: str = "unc_exclude_unified") -> Path:
        """Write the set as REFER dataset `dataset` under `root` (refer_seg/<dataset>/refs(<split_by>).p,
        instances.json, grey JPEGs of each image's size); returns `root`."""
        import cv2

        root = Path(root)
        folder = root / "refer_seg" / dataset
        image_dir = root / "refer_seg" / "images" / "mscoco" / "images" / "train2014"
        folder.mkdir(parents=True, exist_ok=True)
        image_dir.mkdir(parents=True, exist_ok=True)
        instances = self.instances()
        (folder / "instances.json").write_text(json.dumps(instances))
        refs = []
        for im, info in zip(self.images, instances["images"]):
            cv2.imwrite(str(image_dir / info["file_name"]), np.full((info["height"], info["width"], 3), 128, np.uint8))
            for obj in im["objects"]:
                if not obj.get("refs"):
                    continue
                sents = [{"sent_id": obj["id"] * 10 + k, "sent": t, "raw": t, "tokens": t.split()}
                         for k, t in enumerate(obj["refs"])]
                refs.append({"ref_id": obj["id"], "ann_id": obj["id"], "image_id": im["id"], "split": split,
                             "category_id": COCO_CATEGORIES.index(obj["category"]) + 1, "file_name": info["file_name"],
                             "sent_ids": [s["sent_id"] for s in sents], "sentences": sents})
        (folder / f"refs({split_by}).p").write_bytes(pickle.dumps(refs, protocol=2))
        return root


def _box_polygon(box: list[float]) -> list[float]:
    x, y, w, h = (float(v) for v in box)
    return [x, y, x + w, y, x + w, y + h, x, y + h]


def _box_mask(box: list[float], width: int, height: int) -> np.ndarray:
    x, y, w, h = (int(round(v)) for v in box)
    mask = np.zeros((height, width), np.uint8)
    mask[max(y, 0) : min(y + h, height), max(x, 0) : min(x + w, width)] = 1
    return mask
