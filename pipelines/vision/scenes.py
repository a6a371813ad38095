"""Fresh synthetic scenes with multi-hot presence labels: which colours, shapes and colour+shape pairs they hold."""

from __future__ import annotations

import numpy as np
import torch

from pipelines.data.image import clip_preprocess
from pipelines.synth.palette import COLOURS, SHAPES
from pipelines.synth.scene import sample_scene
from pipelines.vision.config import VisionPretrainConfig


def label_names(*, pairs: bool) -> list[str]:
    """Colours, then shapes, then (with `pairs`) every "colour shape" pair."""
    names = [*COLOURS, *SHAPES]
    return names + [f"{c} {s}" for c in COLOURS for s in SHAPES] if pairs else names


def label_groups(*, pairs: bool) -> dict[str, slice]:
    """Label group -> its columns in `label_names` order."""
    groups = {"colour": slice(0, len(COLOURS)), "shape": slice(len(COLOURS), len(COLOURS) + len(SHAPES))}
    if pairs:
        groups["pair"] = slice(len(COLOURS) + len(SHAPES), len(label_names(pairs=True)))
    return groups


def scene_batch(rng: np.random.Generator, n: int, cfg: VisionPretrainConfig,
                clip_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` new scenes -> (CLIP pixels (n, 3, clip_size, clip_size), labels (n, L) float 0/1 in `label_names` order)."""
    column = {name: i for i, name in enumerate(label_names(pairs=cfg.pairs))}
    pixels, labels = [], torch.zeros(n, len(column))
    for i in range(n):
        scene = sample_scene(rng, width=cfg.image_size[0], height=cfg.image_size[1], min_objects=cfg.min_objects,
                             max_objects=cfg.max_objects, noise=cfg.noise)
        pixels.append(clip_preprocess(scene.rgb, clip_size))
        for obj in scene.objects:
            for name in (obj.colour, obj.shape, f"{obj.colour} {obj.shape}"):
                if name in column:
                    labels[i, column[name]] = 1.0
    return torch.stack(pixels), labels
