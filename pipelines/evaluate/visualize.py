"""PNG panels of evaluated queries: GT mask, predicted mask, the [SEG] similarity heatmap and the SasP points.

One panel per query, four tiles side by side over the original image (scaled so its longest side is `tile` px):
    1. GT mask (green; ignore pixels grey)   2. predicted mask from the stored RLE (red)
    3. the stored [SEG] similarity map, min-max normalised and upsampled over the CLIP centre crop it was computed
       on (the shorter side's centred square), as a blue->red heatmap
    4. SasP points: positive green, negative red, neutral/padding grey
A caption line under the tiles gives the query, IoU, presence and the generated text. PIL and numpy only.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from pipelines import storage
from pipelines.data.image import decode_rgb
from pipelines.evaluate.metrics import decode_rle
from pipelines.evaluate.shards import read_shard
from schemas.sample import ShardSample

POINT_COLOURS = {1: (0, 230, 0), 0: (240, 30, 30), -1: (160, 160, 160)}
"""SasP point colours by label: positive green, negative red, neutral / padding grey (panels and overlays)."""
_CAPTION_H = 34


def select_queries(queries: pd.DataFrame, filters: dict[str, str], *, limit: int, worst: bool) -> pd.DataFrame:
    """Scored rows matching every `column=value` filter (compared as text; booleans as true/false).

    With `worst` the rows are ordered by ascending IoU (ties in table order); at most `limit` rows are kept.
    Raises ValueError naming an unknown filter column.
    """
    rows = queries[queries["error"] == ""]
    for column, value in filters.items():
        if column not in rows.columns:
            raise ValueError(f"visualize: unknown filter column {column!r}; choose from {sorted(queries.columns)}")
        as_text = rows[column].map(lambda v: str(v).lower() if isinstance(v, (bool, np.bool_)) else str(v))
        rows = rows[as_text == value]
    if worst:
        rows = rows.sort_values("iou", kind="stable")
    return rows.head(limit)


def iter_images(rows: pd.DataFrame) -> Iterator[tuple[pd.Series, ShardSample]]:
    """(row, sample) for every row, re-reading each needed shard once."""
    for shard, group in rows.groupby("shard", sort=True):
        wanted = set(group["sample_key"])
        samples = {s.key: s for s in read_shard(shard) if isinstance(s, ShardSample) and s.key in wanted}
        for _, row in group.iterrows():
            if row["sample_key"] not in samples:
                raise ValueError(f"visualize: sample {row['sample_key']} is no longer in shard {shard}")
            yield row, samples[row["sample_key"]]


def render_panel(row: pd.Series | dict[str, Any], sample: ShardSample, *, tile: int = 320) -> Image.Image:
    """The four-tile panel of one query row (QUERY_SCHEMA columns) on its sample's image."""
    rgb_HW3 = decode_rgb(sample.image_bytes)
    height, width = rgb_HW3.shape[:2]
    scale = tile / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    base = Image.fromarray(rgb_HW3).resize(size, Image.Resampling.BILINEAR)
    query = next((q for q in sample.queries if q.query_id == row["query_id"]), None)
    gt_HW = query.mask if query is not None and query.mask is not None else np.zeros((height, width), np.uint8)
    pred_HW = decode_rle(row["pred_mask_rle"]) if row["pred_mask_rle"] else np.zeros((height, width), bool)
    tiles = [
        _overlay(base, gt_HW == 1, (0, 220, 0), extra=(gt_HW == 255, (128, 128, 128))),
        _overlay(base, pred_HW, (230, 30, 30)),
        _heatmap(base, np.asarray(row["similarity"], dtype=np.float32), (height, width)),
        _points(base, np.asarray(row["points_xy"], dtype=np.float32), np.asarray(row["point_labels"]), scale),
    ]
    panel = Image.new("RGB", (4 * size[0] + 3 * 4, size[1] + _CAPTION_H), (255, 255, 255))
    for i, img in enumerate(tiles):
        panel.paste(img, (i * (size[0] + 4), 0))
    draw = ImageDraw.Draw(panel)
    caption = (
        f"{row['dataset']}/{row['split']} {row['sample_key']} q={row['query_id']} iou={row['iou']:.3f} "
        f"gt={'Y' if row['gt_present'] else 'N'} pred={'Y' if row['pred_present'] else 'N'} | {row['query_text']}"
    )
    draw.text((4, size[1] + 2), caption[:200], fill=(0, 0, 0))
    if row.get("generated_text"):
        draw.text((4, size[1] + 17), f"says: {row['generated_text']}"[:200], fill=(40, 40, 160))
    return panel


def _resize_mask(mask_HW: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(mask_HW.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 127


def _overlay(base: Image.Image, mask_HW: np.ndarray, colour: tuple[int, int, int], *, extra=None) -> Image.Image:
    out = np.asarray(base, dtype=np.float32).copy()
    for mask, col in [(mask_HW, colour)] + ([extra] if extra is not None else []):
        m = _resize_mask(mask, base.size)
        out[m] = 0.45 * out[m] + 0.55 * np.asarray(col, dtype=np.float32)
    return Image.fromarray(out.clip(0, 255).astype(np.uint8))


def _heatmap(base: Image.Image, similarity_P: np.ndarray, original: tuple[int, int]) -> Image.Image:
    image = np.asarray(base, dtype=np.float32)
    out = image * 0.35  # outside the crop the map says nothing: dim the image
    side = int(math.isqrt(similarity_P.size))
    if side == 0 or side * side != similarity_P.size:
        return Image.fromarray(out.astype(np.uint8))
    grid = similarity_P.reshape(side, side)
    grid = (grid - grid.min()) / max(float(grid.max() - grid.min()), 1e-12)
    # The map covers CLIP's centre crop: the centred square of the shorter side, in display pixels.
    width, height = base.size
    crop = min(width, height)
    left, top = (width - crop) // 2, (height - crop) // 2
    heat = np.asarray(Image.fromarray((grid * 255).astype(np.uint8)).resize((crop, crop), Image.Resampling.BILINEAR))
    colours = _colormap(heat.astype(np.float32) / 255.0)
    region = image[top : top + crop, left : left + crop]
    out[top : top + crop, left : left + crop] = 0.4 * region + 0.6 * colours
    return Image.fromarray(out.clip(0, 255).astype(np.uint8))


def _colormap(v: np.ndarray) -> np.ndarray:
    """[0, 1] -> blue (low) .. green .. red (high) RGB in 0..255."""
    r = np.clip(2 * v - 1, 0, 1)
    g = 1 - np.abs(2 * v - 1)
    b = np.clip(1 - 2 * v, 0, 1)
    return np.stack([r, g, b], axis=-1) * 255.0


def _points(base: Image.Image, points_flat: np.ndarray, labels_K: np.ndarray, scale: float) -> Image.Image:
    img = base.copy()
    draw = ImageDraw.Draw(img)
    points_K2 = points_flat.reshape(-1, 2)
    for (x, y), label in zip(points_K2, labels_K.reshape(-1)):
        cx, cy, r = x * scale, y * scale, 3
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=POINT_COLOURS.get(int(label), (255, 255, 0)),
                     outline=(0, 0, 0))
    return img


def write_panels(rows: pd.DataFrame, dest: str, *, tile: int = 320) -> list[str]:
    """Render every row's panel to `dest/<dataset>-<split>-<sample_key>-<query_id>.png`; returns the URIs."""
    written = []
    for row, sample in iter_images(rows):
        name = "-".join(str(row[c]) for c in ("dataset", "split", "sample_key", "query_id"))
        name = "".join(ch if ch.isalnum() or ch in "-_+" else "_" for ch in name)
        uri = storage.join(dest, f"{name}.png")
        buf = io.BytesIO()
        render_panel(row, sample, tile=tile).save(buf, format="PNG")
        storage.atomic_write_bytes(uri, buf.getvalue())
        written.append(uri)
    return written
