"""Image decoding and the two model-side preprocessings: CLIP (centre crop) and SAM (longest side, pad).

Sizes always come from the model (`READ.clip_image_size`, `READ.sam_image_size`): 336 and 1024 for the real presets,
small for `tiny`.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, ImageOps

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
"""OpenAI CLIP normalisation on the [0, 1] scale."""
SAM_MEAN = (123.675, 116.28, 103.53)
SAM_STD = (58.395, 57.12, 57.375)
"""SAM normalisation on the [0, 255] scale."""


EXIF_ORIENTATION = 0x0112
"""The EXIF tag whose values 5-8 swap an image's width and height."""


def decode_rgb(data: bytes) -> np.ndarray:
    """Encoded image bytes (JPEG, PNG, ...) -> uint8 (H, W, 3) RGB, decoded as READ decodes (`cv2.imread`): the EXIF
    orientation tag is applied, so (H, W) is the upright size. Raises ValueError when the bytes cannot be decoded."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            upright = ImageOps.exif_transpose(img)
            return np.asarray(upright.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, Image.DecompressionBombError, SyntaxError, ValueError) as err:
        raise ValueError(f"image bytes ({len(data)} B) are not a readable image: {err}") from err


def upright_size(img: Image.Image) -> tuple[int, int]:
    """(height, width) of an opened image after its EXIF orientation is applied, from the header only."""
    width, height = img.size
    try:
        orientation = img.getexif().get(EXIF_ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError):
        orientation = 1
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def clip_preprocess(rgb_HW3: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, size, size): shorter side to `size` (bicubic), centre crop, /255, CLIP mean/std."""
    h, w = rgb_HW3.shape[:2]
    # Same rounding as CLIP's image processor: the longer side is int(size * long / short).
    new_h, new_w = (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
    resized = np.asarray(Image.fromarray(rgb_HW3).resize((new_w, new_h), Image.Resampling.BICUBIC))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    crop_SS3 = resized[top : top + size, left : left + size]
    x_3SS = torch.from_numpy(np.array(crop_SS3)).permute(2, 0, 1).float().div_(255.0)
    return x_3SS.sub_(torch.tensor(CLIP_MEAN).view(3, 1, 1)).div_(torch.tensor(CLIP_STD).view(3, 1, 1)).contiguous()


def sam_resized_size(h: int, w: int, size: int) -> tuple[int, int]:
    """(h', w') of an (h, w) image whose longest side is resized to `size` (SAM's ResizeLongestSide rounding)."""
    scale = size / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


def sam_preprocess(rgb_HW3: np.ndarray, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """uint8 (H, W, 3) -> (float (3, size, size), (h', w')).

    Longest side resized to `size` (bilinear, as SAM's ResizeLongestSide on a PIL image), normalised on the 0-255 scale
    with SAM's mean/std, then zero-padded bottom/right (padding after normalisation, as SAM's own preprocess does).
    """
    h, w = rgb_HW3.shape[:2]
    new_h, new_w = sam_resized_size(h, w, size)
    resized = np.asarray(Image.fromarray(rgb_HW3).resize((new_w, new_h), Image.Resampling.BILINEAR))
    out_3SS = torch.zeros(3, size, size, dtype=torch.float32)
    x_3hw = out_3SS[:, :new_h, :new_w]
    x_3hw.copy_(torch.from_numpy(np.array(resized)).permute(2, 0, 1))  # uint8 -> float in the copy
    x_3hw.sub_(torch.tensor(SAM_MEAN).view(3, 1, 1)).div_(torch.tensor(SAM_STD).view(3, 1, 1))
    return out_3SS, (new_h, new_w)


def model_image(rgb_HW3: np.ndarray, *, clip_size: int, sam_size: int, device: torch.device | str,
                dtype: torch.dtype) -> dict:
    """One image as READ's inference takes it: {"clip": (3, c, c), "sam": (3, s, s)} on `device` in `dtype`,
    "resized": (h', w') inside SAM's frame, "original": (H, W)."""
    sam_3SS, resized = sam_preprocess(rgb_HW3, sam_size)
    return {
        "clip": clip_preprocess(rgb_HW3, clip_size).to(device, dtype),
        "sam": sam_3SS.to(device, dtype),
        "resized": resized,
        "original": (int(rgb_HW3.shape[0]), int(rgb_HW3.shape[1])),
    }


def mask_target(mask_HW: np.ndarray) -> torch.Tensor:
    """uint8 (H, W) in {0, 1, 255} -> float (H, W) training target: 1 where mask == 1, else 0 (ignore -> background)."""
    return torch.from_numpy(mask_HW == 1).float()
