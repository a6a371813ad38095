"""COCO-Stuff and Mapillary Vistas writers: label PNGs (pixel value = class index) over JPEG images.

- cocostuff: `cocostuff/train2017/<12 digits>.png` (mode L, the 0-based stuffthingmaps values of READ's class list,
  255 unlabeled) over `coco/train2017/<same>.jpg`. Objects carry a thing class (COCOSTUFF_SHAPES); the background is
  "sky" above "grass" on even images and "wall-other" (a "-" class, which READ ignores) on odd ones; the first row
  is 255.
- mapillary: `mapillary/config_v2.0.json` (a small `labels` list in the v2.0 fields, "Unlabeled" last, as in v2.0)
  and `mapillary/training/v2.0/labels/<id>.png` (palette PNG, index = label) over `mapillary/training/images/<id>.jpg`
  (22-character ids as Mapillary's). Background "Sky" above "Road"; even images end in a band of "Unlabeled".
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.synth.config import SynthConfig
from pipelines.synth.rng import rng_for
from pipelines.synth.scene import Scene, encode_jpeg, sample_scene

COCOSTUFF_SHAPES = {"circle": 36, "square": 83, "triangle": 37, "star": 33, "cross": 12, "diamond": 60}
"""Shape -> label value in READ's COCO-Stuff list (sports ball, book, kite, frisbee, stop sign, cake)."""
COCOSTUFF_SKY, COCOSTUFF_GRASS, COCOSTUFF_WALL_OTHER = 156, 123, 172
"""Background values: "sky", "grass", "wall-other" (ignored by READ: its name holds "-")."""
COCOSTUFF_IGNORED = frozenset({255, COCOSTUFF_WALL_OTHER})
FIRST_COCOSTUFF_ID = 300001

MAPILLARY_LABELS = (
    ("animal--bird", "Bird", (165, 42, 42)),
    ("construction--flat--road", "Road", (128, 64, 128)),
    ("nature--sky", "Sky", (70, 130, 180)),
    ("object--manhole", "Manhole", (100, 128, 160)),
    ("object--sign--advertisement", "Signage - Advertisement", (250, 171, 30)),
    ("object--support--pole", "Pole", (153, 153, 153)),
    ("object--traffic-sign--back", "Traffic Sign (Back)", (192, 192, 192)),
    ("object--traffic-sign--front", "Traffic Sign (Front)", (220, 220, 0)),
    ("void--unlabeled", "Unlabeled", (0, 0, 0)),
)
"""(name, readable, color) of the synthetic config_v2.0.json, "Unlabeled" last (as Mapillary v2.0)."""
MAPILLARY_SHAPES = {"circle": 7, "square": 4, "triangle": 6, "star": 0, "cross": 5, "diamond": 3}
MAPILLARY_SKY, MAPILLARY_ROAD, MAPILLARY_UNLABELED = 2, 1, 8
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def mapillary_id(i: int) -> str:
    """The 22-character file id of the i-th Mapillary image (Mapillary's alphabet; the same for every seed, so that
    trees of different seeds hold the same file names)."""
    return "".join(_ID_CHARS[int(k)] for k in rng_for(0, "mapillary-id", i).integers(len(_ID_CHARS), size=22))


def _scenes(cfg: SynthConfig, tag: str, count: int) -> Iterator[Scene]:
    for i in range(count):
        yield sample_scene(rng_for(cfg.seed, tag, i), width=cfg.width, height=cfg.height,
                           min_objects=cfg.min_objects, max_objects=cfg.max_objects, noise=cfg.noise)


def _paint(scene: Scene, background: np.ndarray, values: dict[str, int]) -> np.ndarray:
    label = background.copy()
    for o in scene.objects:
        label[o.mask.astype(bool)] = values[o.shape]
    return label


def _png(label: np.ndarray, palette: list[int] | None = None) -> bytes:
    img = Image.fromarray(label, "L" if palette is None else "P")
    if palette is not None:
        img.putpalette(palette)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _count_classes(label: np.ndarray, ignored: frozenset[int]) -> int:
    return sum(int(v) not in ignored for v in np.unique(label))


def write_cocostuff(cfg: SynthConfig, root: Path) -> dict[str, dict]:
    """Write the train2017 split. Returns {"train": {images, classes}} (classes: present values READ keeps)."""
    label_dir, image_dir = root / "cocostuff" / "train2017", root / "coco" / "train2017"
    label_dir.mkdir(parents=True, exist_ok=True)
    image_dir.mkdir(parents=True, exist_ok=True)
    classes = 0
    for i, scene in enumerate(_scenes(cfg, "cocostuff", cfg.num_cocostuff)):
        background = np.full((scene.height, scene.width), COCOSTUFF_WALL_OTHER, dtype=np.uint8)
        if i % 2 == 0:
            background[: scene.height // 2] = COCOSTUFF_SKY
            background[scene.height // 2:] = COCOSTUFF_GRASS
        background[0] = 255
        label = _paint(scene, background, COCOSTUFF_SHAPES)
        stem = f"{FIRST_COCOSTUFF_ID + i:012d}"
        (image_dir / f"{stem}.jpg").write_bytes(encode_jpeg(scene.image, cfg.jpeg_quality))
        (label_dir / f"{stem}.png").write_bytes(_png(label))
        classes += _count_classes(label, COCOSTUFF_IGNORED)
    return {"train": {"images": cfg.num_cocostuff, "classes": classes}}


def write_mapillary(cfg: SynthConfig, root: Path) -> dict[str, dict]:
    """Write config_v2.0.json and the training split. Returns {"train": {images, classes}}."""
    folder = root / "mapillary"
    label_dir, image_dir = folder / "training" / "v2.0" / "labels", folder / "training" / "images"
    label_dir.mkdir(parents=True, exist_ok=True)
    image_dir.mkdir(parents=True, exist_ok=True)
    labels = [{"color": list(color), "instances": False, "readable": readable, "name": name, "evaluate": True}
              for name, readable, color in MAPILLARY_LABELS]
    (folder / "config_v2.0.json").write_text(json.dumps({"labels": labels, "version": "2.0", "mapping": "public"},
                                                        indent=1))
    palette = [c for _, _, color in MAPILLARY_LABELS for c in color]
    classes = 0
    for i, scene in enumerate(_scenes(cfg, "mapillary", cfg.num_mapillary)):
        background = np.full((scene.height, scene.width), MAPILLARY_ROAD, dtype=np.uint8)
        background[: scene.height // 2] = MAPILLARY_SKY
        if i % 2 == 0:
            background[-max(2, scene.height // 10):] = MAPILLARY_UNLABELED
        label = _paint(scene, background, MAPILLARY_SHAPES)
        stem = mapillary_id(i)
        (image_dir / f"{stem}.jpg").write_bytes(encode_jpeg(scene.image, cfg.jpeg_quality))
        (label_dir / f"{stem}.png").write_bytes(_png(label, palette))
        classes += _count_classes(label, frozenset({255}))
    return {"train": {"images": cfg.num_mapillary, "classes": classes}}
