"""Fresh synthetic scenes with per-patch labels: the colour and the shape of the object that covers each CLIP patch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from demo.vision.config import VisionPretrainConfig
from pipelines.data.image import clip_preprocess
from pipelines.synth.palette import COLOURS, SHAPES
from pipelines.synth.scene import Scene, sample_scene

BACKGROUND = 0
"""Class 0 of both label maps: no object covers the patch."""
COLOUR_CLASSES = ("background", *COLOURS)
SHAPE_CLASSES = ("background", *SHAPES)


@dataclass(frozen=True)
class SceneBatch:
    """`n` scenes as the tower sees them, with a label map per scene on the tower's G x G patch grid (P = G * G).

    Attributes:
        pixels: float (n, 3, C, C), CLIP-preprocessed.
        colour: long (n, P), index into COLOUR_CLASSES, row-major over the grid.
        shape: long (n, P), index into SHAPE_CLASSES.
        objects: long (n, P), 1 + the index of the covering object in its scene, 0 for background (groups the
            patches of one object for object-level accuracy).
    """

    pixels: torch.Tensor
    colour: torch.Tensor
    shape: torch.Tensor
    objects: torch.Tensor


def cell_cover(mask_HW: np.ndarray, grid: int) -> np.ndarray:
    """Fraction of each of the grid x grid cells that `mask_HW` (0/1) covers: float (grid, grid).

    Cells split the image evenly, as CLIP's patches split a square image after its resize.
    """
    h, w = mask_HW.shape
    rows = np.linspace(0, h, grid + 1).round().astype(int)
    cols = np.linspace(0, w, grid + 1).round().astype(int)
    sums = np.add.reduceat(np.add.reduceat(mask_HW.astype(np.float64), rows[:-1], axis=0), cols[:-1], axis=1)
    areas = np.outer(np.diff(rows), np.diff(cols))
    return sums / np.maximum(areas, 1)


def patch_labels(scene: Scene, grid: int, min_cover: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(colour, shape, object) label maps, each int (grid * grid,): a cell takes the object covering most of it,
    when that object covers at least `min_cover` of the cell; otherwise background (0)."""
    colour, shape, owner = (np.zeros(grid * grid, dtype=np.int64) for _ in range(3))
    if not scene.objects:
        return colour, shape, owner
    cover = np.stack([cell_cover(obj.mask, grid).reshape(-1) for obj in scene.objects])
    best, covered = cover.argmax(0), cover.max(0) >= min_cover
    for i, obj in enumerate(scene.objects):
        cells = covered & (best == i)
        colour[cells] = COLOUR_CLASSES.index(obj.colour)
        shape[cells] = SHAPE_CLASSES.index(obj.shape)
        owner[cells] = i + 1
    return colour, shape, owner


def scene_batch(rng: np.random.Generator, n: int, cfg: VisionPretrainConfig, clip_size: int, grid: int) -> SceneBatch:
    """`n` new scenes drawn with `rng`, preprocessed for a tower of input side `clip_size` and a grid x grid patch grid."""
    pixels, labels = [], []
    for _ in range(n):
        scene = sample_scene(rng, width=cfg.image_size[0], height=cfg.image_size[1], min_objects=cfg.min_objects,
                             max_objects=cfg.max_objects, noise=cfg.noise)
        pixels.append(clip_preprocess(scene.rgb, clip_size))
        labels.append(patch_labels(scene, grid, cfg.min_cover))
    colour, shape, owner = (torch.from_numpy(np.stack(column)) for column in zip(*labels))
    return SceneBatch(pixels=torch.stack(pixels), colour=colour, shape=shape, objects=owner)
