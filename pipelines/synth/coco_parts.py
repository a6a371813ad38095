"""PASCAL-Part and PACO-LVIS writers: COCO-format part annotations in the layouts READ reads.

- pascal_part: `vlpart/pascal_part/train.json` (categories "object:part") over
  `vlpart/pascal_part/VOCdevkit/VOC2010/JPEGImages/2008_<6 digits>.jpg`. Every shape is an object (PASCAL_OBJECTS)
  with a "body" annotation (its polygon) and two "eye" annotations (small squares inside it): two eyes, two queries.
- paco_lvis: `vlpart/paco/annotations/paco_lvis_v1_train.json` over `coco/train2017/<12 digits>.jpg` (`file_name`
  "train2017/<12 digits>.jpg"). Every shape gets an object annotation (PACO_OBJECTS; polygons on even objects,
  compressed RLE on odd ones) and a "base_(bottom)" part annotation (the polygon shrunk to half around its centre).

Polygons are rounded to 2 decimals and decode, through pycocotools `annToMask`, to what the reader keeps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from pipelines.synth.config import SynthConfig
from pipelines.synth.palette import SHAPES
from pipelines.synth.rng import rng_for
from pipelines.synth.scene import Scene, encode_jpeg, rasterise, sample_scene

PASCAL_OBJECTS = {"circle": "cat", "square": "tvmonitor", "triangle": "bird", "star": "dog", "cross": "aeroplane",
                  "diamond": "bottle"}
PASCAL_PARTS = ("body", "eye")
PACO_OBJECTS = {"circle": "plate", "square": "trash_can", "triangle": "pan_(for_cooking)", "star": "fan",
                "cross": "chair", "diamond": "kite_(toy)"}
PACO_PART = "base_(bottom)"
FIRST_PACO_ID = 400001


def _categories(names: list[str]) -> list[dict[str, Any]]:
    return [{"id": k + 1, "name": name, "supercategory": name.split(":")[0]} for k, name in enumerate(names)]


def _polygon(points: np.ndarray) -> list[float]:
    return [round(float(v), 2) for v in points.reshape(-1)]


def _square(cx: float, cy: float, half: float) -> np.ndarray:
    return np.array([[cx - half, cy - half], [cx + half, cy - half], [cx + half, cy + half], [cx - half, cy + half]])


def _annotation(ann_id: int, image_id: int, category_id: int, segmentation: Any, mask: np.ndarray) -> dict[str, Any]:
    ys, xs = np.nonzero(mask)
    bbox = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)] if len(xs) else [
        0, 0, 0, 0]
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "segmentation": segmentation,
            "area": int(mask.sum()), "bbox": bbox, "iscrowd": 0}


def _pascal_annotations(scene: Scene, image_id: int, next_id: int) -> list[dict[str, Any]]:
    anns = []
    for o in scene.objects:
        body = SHAPES.index(o.shape) * len(PASCAL_PARTS) + 1
        anns.append(_annotation(next_id + len(anns), image_id, body, [_polygon(o.polygon)], o.mask))
        half = max(1.0, min(o.bbox[2], o.bbox[3]) / 10)
        for dx in (-2.0 * half, 2.0 * half):
            eye = np.round(_square(o.cx + dx, o.cy - half, half), 2)
            anns.append(_annotation(next_id + len(anns), image_id, body + 1, [_polygon(eye)],
                                    rasterise(eye, scene.height, scene.width)))
    return anns


def _paco_annotations(scene: Scene, image_id: int, next_id: int) -> list[dict[str, Any]]:
    anns = []
    for o in scene.objects:
        obj = SHAPES.index(o.shape) * 2 + 1
        if o.index % 2 == 0:
            segmentation: Any = [_polygon(o.polygon)]
        else:
            rle = mask_utils.encode(np.asfortranarray(o.mask))
            segmentation = {"size": [scene.height, scene.width], "counts": rle["counts"].decode()}
        anns.append(_annotation(next_id + len(anns), image_id, obj, segmentation, o.mask))
        base = np.round(o.polygon - (o.polygon - [o.cx, o.cy]) * 0.5, 2)
        anns.append(_annotation(next_id + len(anns), image_id, obj + 1, [_polygon(base)],
                                rasterise(base, scene.height, scene.width)))
    return anns


def _write(cfg: SynthConfig, root: Path, dataset: str, count: int) -> dict[str, dict]:
    if dataset == "pascal_part":
        image_dir = root / "vlpart" / "pascal_part" / "VOCdevkit" / "VOC2010" / "JPEGImages"
        json_path = root / "vlpart" / "pascal_part" / "train.json"
        names = [f"{PASCAL_OBJECTS[s]}:{part}" for s in SHAPES for part in PASCAL_PARTS]
    else:
        image_dir = root / "coco" / "train2017"
        json_path = root / "vlpart" / "paco" / "annotations" / "paco_lvis_v1_train.json"
        names = [name for s in SHAPES for name in (PACO_OBJECTS[s], f"{PACO_OBJECTS[s]}:{PACO_PART}")]
    image_dir.mkdir(parents=True, exist_ok=True)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for i in range(count):
        scene = sample_scene(rng_for(cfg.seed, dataset, i), width=cfg.width, height=cfg.height,
                             min_objects=cfg.min_objects, max_objects=cfg.max_objects, noise=cfg.noise)
        if dataset == "pascal_part":
            image_id, name = i + 1, f"2008_{i + 1:06d}.jpg"
            file_name = name
            anns += _pascal_annotations(scene, image_id, len(anns) + 1)
        else:
            image_id = FIRST_PACO_ID + i
            name = f"{image_id:012d}.jpg"
            file_name = f"train2017/{name}"
            anns += _paco_annotations(scene, image_id, len(anns) + 1)
        (image_dir / name).write_bytes(encode_jpeg(scene.image, cfg.jpeg_quality))
        images.append({"id": image_id, "file_name": file_name, "height": cfg.height, "width": cfg.width})
    data = {"info": {"description": f"synthetic {dataset}"}, "images": images, "annotations": anns,
            "categories": _categories(names)}
    json_path.write_text(json.dumps(data))
    return {"train": {"images": count, "queries": len(anns)}}


def write_pascal_part(cfg: SynthConfig, root: Path) -> dict[str, dict]:
    """Write train.json and its images. Returns {"train": {images, queries}} (one query per annotation)."""
    return _write(cfg, root, "pascal_part", cfg.num_pascal_part)


def write_paco_lvis(cfg: SynthConfig, root: Path) -> dict[str, dict]:
    """Write paco_lvis_v1_train.json and its images. Returns {"train": {images, queries}}."""
    return _write(cfg, root, "paco_lvis", cfg.num_paco_lvis)
