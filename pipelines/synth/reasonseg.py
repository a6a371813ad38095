"""ReasonSeg writer: `reason_seg/ReasonSeg/<split>/<stem>.jpg` + `<stem>.json` (LabelMe-like).

JSON keys: `text` (1-3 instructions, all naming the same target set), `is_sentence`, `shapes` (LabelMe polygons:
label "target", sometimes one "ignore" (another object) and one "flag" (a random quad that readers must skip)),
`imagePath`, and `imageHeight`/`imageWidth` (the UPRIGHT size, as LabelMe records it). Extra keys readers may ignore:
`query_types` (one type per `text` entry: colour | shape | colour+shape | spatial | size), `objects` (the drawn ground
truth: index, colour, shape, bbox, area, centre) and `target_indices`.

Objects are painted on, and their truth areas/boxes measured from, the mask READ's `get_mask_from_json` draws for
their polygon (`pipelines.sources.reasonseg.rasterise_shapes`, OpenCV), so the image and the reader's mask agree.

Three files per tree carry the real files' quirks:
- per split, the LAST JSON is encoded in cp1252 (not UTF-8), its first text using `APOSTROPHE_TEMPLATE` (a curly
  apostrophe, byte 0x92), as some ReasonSeg files are; READ re-reads such files as cp1252;
- the FIRST train image is stored rotated with an EXIF Orientation tag (6) that makes it upright when decoded with EXIF
  applied (cv2.imread), as phone photos are; its polygons and imageHeight/imageWidth are in upright coordinates.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipelines.sources.reasonseg import rasterise_shapes
from pipelines.synth.config import SynthConfig
from pipelines.synth.expressions import (
    APOSTROPHE_TEMPLATE,
    Expression,
    candidates,
    margin_px,
    pick,
    plural_candidates,
    sentence,
)
from pipelines.synth.rng import rng_for
from pipelines.synth.scene import Scene, encode_jpeg, encode_jpeg_rotated, sample_scene

CP1252 = "cp1252"
ROTATED_ORIENTATION = 6
"""EXIF Orientation of the rotated train image (the viewer rotates the stored pixels 90 degrees clockwise)."""


def opencv_mask(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 (H, W) {0, 1}: the pixels READ's `get_mask_from_json` marks for one target polygon (via the reader's
    `rasterise_shapes`, given the points exactly as the JSON stores them)."""
    points = [[float(x), float(y)] for x, y in polygon]
    return (rasterise_shapes([{"label": "target", "points": points}], height, width) == 1).astype(np.uint8)


def _shape(label: str, points: np.ndarray) -> dict:
    return {"label": label, "labelme_label": label, "points": [[float(x), float(y)] for x, y in points],
            "group_id": None, "shape_type": "polygon", "flags": {}}


def _choose(rng: np.random.Generator, scene: Scene) -> tuple[list[Expression], list[int]]:
    """Expressions (1-3) that all denote the same target set, and that set."""
    margin = margin_px(scene.width, scene.height)
    plural = plural_candidates(scene.objects)
    if plural and rng.random() < 0.25:
        expr, targets = plural[int(rng.integers(len(plural)))]
        return [expr], targets
    for k in rng.permutation(len(scene.objects)):
        exprs = pick(rng, candidates(scene.objects[int(k)], scene.objects, margin), int(rng.integers(1, 4)))
        if exprs:
            return exprs, [int(k)]
    raise AssertionError("every object of a non-overlapping scene has an unambiguous expression")


def is_cp1252(cfg: SynthConfig, split: str, index: int) -> bool:
    """Whether sample `index` of `split` is the one JSON of that split written in cp1252 (the last one)."""
    n = cfg.num_reasonseg_train if split == "train" else cfg.num_reasonseg_val
    return index == n - 1


def is_rotated(split: str, index: int) -> bool:
    """Whether sample `index` of `split` is the EXIF-rotated image (the first train image)."""
    return split == "train" and index == 0


def sample_record(cfg: SynthConfig, split: str, index: int) -> tuple[Scene, dict]:
    """The (upright) scene and JSON record of one ReasonSeg sample.

    The cp1252 sample (`is_cp1252`) is always a long query whose first text uses APOSTROPHE_TEMPLATE.
    """
    rng = rng_for(cfg.seed, "reasonseg", split, index)
    scene = sample_scene(rng, width=cfg.width, height=cfg.height, min_objects=cfg.min_objects,
                         max_objects=cfg.max_objects, noise=cfg.noise, rasteriser=opencv_mask)
    exprs, targets = _choose(rng, scene)
    cp1252 = is_cp1252(cfg, split, index)
    is_sentence = bool(rng.random() < 0.5) or cp1252
    texts = [sentence(rng, e) if is_sentence else e.text() for e in exprs]
    if cp1252:
        texts[0] = sentence(rng, exprs[0], APOSTROPHE_TEMPLATE)
    shapes = [_shape("target", scene.objects[t].polygon) for t in targets]
    others = [o for o in scene.objects if o.index not in targets]
    if others and rng.random() < 0.3:
        shapes.append(_shape("ignore", others[int(rng.integers(len(others)))].polygon))
    if rng.random() < 0.3:
        quad = rng.uniform([0, 0], [cfg.width - 1, cfg.height - 1], size=(4, 2)).round(2)
        shapes.append(_shape("flag" if rng.random() < 0.5 else "Flag", quad))  # readers match it case-insensitively
    record = {"text": texts, "is_sentence": is_sentence, "shapes": shapes,
              "query_types": [e.type for e in exprs], "target_indices": targets,
              "objects": [o.truth() for o in scene.objects]}
    return scene, record


def write_reasonseg(cfg: SynthConfig, root: Path) -> dict[str, dict]:
    """Write train and val. Returns {split: {images, queries}} (queries = all `text` entries)."""
    summary = {}
    for split, n in (("train", cfg.num_reasonseg_train), ("val", cfg.num_reasonseg_val)):
        folder = root / "reason_seg" / "ReasonSeg" / split
        folder.mkdir(parents=True, exist_ok=True)
        queries = 0
        for i in range(n):
            scene, record = sample_record(cfg, split, i)
            stem = f"synth_{split}_{i:05d}"
            record.update(imagePath=f"{stem}.jpg", imageHeight=scene.height, imageWidth=scene.width)
            if is_rotated(split, i):
                jpeg = encode_jpeg_rotated(scene.image, cfg.jpeg_quality, ROTATED_ORIENTATION)
            else:
                jpeg = encode_jpeg(scene.image, cfg.jpeg_quality)
            (folder / f"{stem}.jpg").write_bytes(jpeg)
            if is_cp1252(cfg, split, i):
                data = json.dumps(record, indent=1, ensure_ascii=False).encode(CP1252)
            else:
                data = json.dumps(record, indent=1).encode("ascii")
            (folder / f"{stem}.json").write_bytes(data)
            queries += len(record["text"])
        summary[split] = {"images": n, "queries": queries}
    return summary
