"""Scenes of coloured shapes: sample non-overlapping objects, then draw the RGB image and each object's mask.

Objects never overlap (placement is rejection-sampled with a gap), so no object hides another, and every object's
mask is exactly its polygon as the dataset's reader rasterises it; the image is painted from that mask. By default
that is pycocotools (`rasterise`, what REFER readers decode); ReasonSeg scenes pass READ's OpenCV drawing instead
(pipelines.synth.reasonseg).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from pipelines.synth.palette import COLOURS, SHAPES, unit_outline


@dataclass(frozen=True, kw_only=True)
class SceneObject:
    """One drawn shape.

    Attributes:
        index: position in `Scene.objects`.
        colour, shape: names from pipelines.synth.palette.
        polygon: float (V, 2) outline (x, y) in pixels, inside the image.
        mask: uint8 (H, W) in {0, 1}: the pixels painted for this object (the scene's rasterisation of `polygon`).
        area: number of mask pixels.
        bbox: (x, y, w, h) of the mask (COCO convention, pixels).
        cx, cy: centre of the mask in pixels.
    """

    index: int
    colour: str
    shape: str
    polygon: np.ndarray
    mask: np.ndarray
    area: int
    bbox: tuple[int, int, int, int]
    cx: float
    cy: float

    def truth(self) -> dict:
        """JSON-able ground truth readers may ignore: {index, colour, shape, bbox, area, centre}."""
        return {"index": self.index, "colour": self.colour, "shape": self.shape, "bbox": list(self.bbox),
                "area": self.area, "centre": [round(self.cx, 3), round(self.cy, 3)]}


@dataclass(frozen=True, kw_only=True)
class Scene:
    """A drawn image (PIL RGB) and its objects."""

    width: int
    height: int
    image: Image.Image
    objects: tuple[SceneObject, ...]

    @property
    def rgb(self) -> np.ndarray:
        """uint8 (H, W, 3) copy of the drawn image."""
        return np.asarray(self.image, dtype=np.uint8)


def _place(rng: np.random.Generator, n: int, width: int, height: int) -> list[tuple[float, float, float]]:
    """Up to `n` non-overlapping discs (cx, cy, r): r in [8%, 22%] of the short side, at least 6 px."""
    short = min(width, height)
    r_min = max(6.0, 0.08 * short)
    r_max = max(r_min + 1.0, 0.22 * short)
    gap = max(2.0, 0.02 * short)
    placed: list[tuple[float, float, float]] = []
    for _ in range(n):
        for attempt in range(200):
            shrink = 1.0 - 0.5 * attempt / 200  # later attempts try smaller objects
            r = float(rng.uniform(r_min, max(r_min, r_max * shrink)))
            cx = float(rng.uniform(r + 1, width - r - 1))
            cy = float(rng.uniform(r + 1, height - r - 1))
            if all(np.hypot(cx - x, cy - y) > r + q + gap for x, y, q in placed):
                placed.append((cx, cy, r))
                break
    return placed


Rasteriser = Callable[[np.ndarray, int, int], np.ndarray]
"""(float (V, 2) polygon, height, width) -> uint8 (H, W) {0, 1} mask of the pixels a reader assigns to the polygon."""


def sample_scene(rng: np.random.Generator, *, width: int, height: int, min_objects: int, max_objects: int,
                 noise: float, rasteriser: Rasteriser | None = None) -> Scene:
    """Draw a scene of `min_objects..max_objects` shapes on a grey, optionally noisy background.

    Images too small for `min_objects` shapes (rare below ~64 px) may get fewer, but never fewer than 2.

    Colours and shapes may repeat (so that a single word is often not enough to pick an object out).
    Each object is painted exactly on `rasteriser(polygon, height, width)` (default `rasterise`, pycocotools), which
    is also its `mask`; the rasteriser draws no random numbers, so it never changes the rest of the scene.
    """
    rasteriser = rasterise if rasteriser is None else rasteriser
    n_target = int(rng.integers(min_objects, max_objects + 1))
    discs = _place(rng, n_target, width, height)
    for attempt in range(1000):  # too crowded for the sampled sizes: start over (rare; tiny images only)
        if len(discs) >= (min_objects if attempt < 20 else 2):  # after 20 tries, accept 2 so tiny images finish
            break
        discs = _place(rng, n_target, width, height)
    if len(discs) < 2:
        raise ValueError(f"synth.image_size {width}x{height} is too small for two shapes; use at least 32x32")
    # a small pool of colours/shapes per scene makes repeats common
    colours = list(COLOURS)
    pool_c = rng.choice(len(colours), size=min(len(colours), int(rng.integers(2, 5))), replace=False)
    pool_s = rng.choice(len(SHAPES), size=min(len(SHAPES), int(rng.integers(2, 5))), replace=False)

    image = _background(rng, width, height, int(noise))
    objects = []
    for i, (cx, cy, r) in enumerate(discs):
        colour = colours[int(pool_c[rng.integers(len(pool_c))])]
        shape = SHAPES[int(pool_s[rng.integers(len(pool_s))])]
        angle = float(rng.uniform(-0.25, 0.25)) if shape in ("square", "triangle", "star") else 0.0
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        polygon = unit_outline(shape) @ rot.T * r + np.array([cx, cy])
        polygon = np.round(np.clip(polygon, 0, [width - 1, height - 1]), 2)
        jitter = rng.integers(-12, 13, size=3)
        fill = tuple(int(v) for v in np.clip(np.array(COLOURS[colour]) + jitter, 0, 255))
        # Rasterise the way the dataset's reader will, so the annotation decodes to exactly these pixels.
        mask = rasteriser(polygon, height, width)
        x0, y0 = max(0, int(np.floor(polygon[:, 0].min())) - 1), max(0, int(np.floor(polygon[:, 1].min())) - 1)
        x1, y1 = int(np.ceil(polygon[:, 0].max())) + 2, int(np.ceil(polygon[:, 1].max())) + 2
        crop_HW = np.ascontiguousarray(mask[y0:y1, x0:x1])
        if int(crop_HW.sum()) != int(mask.sum()):
            raise AssertionError(f"rasteriser marked pixels outside the polygon's box {(x0, y0, x1, y1)}")
        image.paste(fill, (x0, y0), mask=Image.fromarray(crop_HW * np.uint8(255), "L"))  # image and mask agree
        ys, xs = np.nonzero(crop_HW)
        ys, xs = ys + y0, xs + x0
        bbox = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
        objects.append(SceneObject(index=i, colour=colour, shape=shape, polygon=polygon, mask=mask,
                                   area=int(mask.sum()), bbox=bbox, cx=float(xs.mean()), cy=float(ys.mean())))
    return Scene(width=width, height=height, image=image, objects=tuple(objects))


def rasterise(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """float (V, 2) polygon -> uint8 (H, W) {0, 1} mask, exactly as pycocotools `frPyObjects` + `decode` give it."""
    with warnings.catch_warnings():  # pycocotools 2.x + numpy 2: a harmless DeprecationWarning on every decode
        warnings.simplefilter("ignore", DeprecationWarning)
        rle = mask_utils.frPyObjects([polygon.reshape(-1).tolist()], height, width)
        return np.ascontiguousarray(mask_utils.decode(rle)[:, :, 0])


def _background(rng: np.random.Generator, width: int, height: int, amp: int) -> Image.Image:
    """A grey, slightly tinted RGB image with the same uniform noise in [-amp, amp] on every channel.

    Built with PIL lookup tables on random bytes (no per-pixel numpy arithmetic on (H, W, 3)): fast at 640x480.
    """
    tint = int(rng.integers(110, 180)) + rng.integers(-8, 9, size=3)  # channel levels in [102, 187]
    if amp == 0:
        return Image.new("RGB", (width, height), tuple(int(v) for v in tint))
    raw = rng.bit_generator.random_raw((width * height + 7) // 8).tobytes()  # fastest uniform bytes numpy offers
    noise = Image.frombytes("L", (width, height), raw[: width * height])
    # random byte v -> level + (v mod (2 amp + 1)) - amp; the modulo bias is irrelevant for a texture
    offsets = np.arange(256) % (2 * amp + 1) - amp
    bands = [noise.point(np.clip(int(t) + offsets, 0, 255).tolist()) for t in tint]
    return Image.merge("RGB", bands)


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    """RGB image -> JPEG bytes (deterministic for the same input)."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


EXIF_ORIENTATION = 0x0112
"""EXIF tag: how a viewer must rotate/flip the stored pixels to show the image upright."""
_STORED_FOR_ORIENTATION = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
"""Orientation -> transpose turning upright pixels into the stored ones (6: the viewer rotates 90 degrees clockwise,
so the pixels are stored rotated 90 degrees counter-clockwise; 8 is the reverse)."""


def encode_jpeg_rotated(image: Image.Image, quality: int, orientation: int = 6) -> bytes:
    """Upright RGB image -> JPEG bytes whose pixels are stored rotated (width and height swapped) and whose EXIF
    Orientation tag (6 or 8) turns them upright again when decoded with EXIF applied (`cv2.imread`,
    `PIL.ImageOps.exif_transpose`), as phone photos are stored. Deterministic for the same input."""
    if orientation not in _STORED_FOR_ORIENTATION:
        raise ValueError(f"orientation must be one of {sorted(_STORED_FOR_ORIENTATION)}, got {orientation}")
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    buf = io.BytesIO()
    image.transpose(_STORED_FOR_ORIENTATION[orientation]).save(buf, format="JPEG", quality=quality,
                                                               exif=exif.tobytes())
    return buf.getvalue()
