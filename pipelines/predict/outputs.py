"""What jobs.predict writes per request: masks/<id>.png, overlays/<id>.png, traces/<id>.npz, parts/<id>.parquet;
and at the end predictions.parquet (all rows, PREDICTION_SCHEMA).

A request's part is written last, atomically: a request with a part is done (a resumed run skips it).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image, ImageDraw

from pipelines import storage
from pipelines.evaluate.metrics import encode_rle
from pipelines.evaluate.visualize import POINT_COLOURS
from pipelines.predict.predictor import Prediction
from schemas.results import PREDICTION_SCHEMA, validate_predictions


def prediction_row(pred: Prediction, *, checkpoint: str) -> dict[str, Any]:
    """The predictions-table row of one request."""
    req, trace = pred.request, pred.trace
    h, w = pred.rgb_HW3.shape[:2] if pred.rgb_HW3 is not None else (0, 0)
    mask = pred.mask_HW
    labels = trace.get("point_labels", np.zeros((0, 0)))
    return {
        "request_id": req.request_id,
        "checkpoint": checkpoint,
        "image": req.image,
        "height": int(h),
        "width": int(w),
        "mode": req.mode,
        "query_text": req.query,
        "prompt": pred.prompt,
        "generated_text": pred.generated_text,
        "num_seg": int(len(trace.get("seg_positions", []))),
        "pred_present": bool(mask is not None and mask.any()),
        "pred_area": int(mask.sum()) if mask is not None else 0,
        "pred_mask_rle": encode_rle(mask) if mask is not None else "",
        "similarity": _first(trace.get("similarity")),
        "points_xy": _first(trace.get("points")),
        "point_labels": [int(v) for v in (labels[0] if len(labels) else [])],
        "latency_ms": float(pred.latency_ms),
        "error": pred.error,
    }


def overlay(rgb_HW3: np.ndarray, mask_HW: np.ndarray, points_K2: np.ndarray, labels_K: np.ndarray) -> Image.Image:
    """The image with the mask blended in red and the SasP points (positive green, negative red, neutral grey;
    padding slots are not drawn)."""
    out = rgb_HW3.astype(np.float32)
    out[mask_HW] = 0.5 * out[mask_HW] + 0.5 * np.array([255.0, 0.0, 0.0])
    img = Image.fromarray(out.round().astype(np.uint8))
    draw = ImageDraw.Draw(img)
    radius = max(2, round(max(rgb_HW3.shape[:2]) / 200))
    for (x, y), label in zip(points_K2.tolist(), labels_K.tolist()):
        if label == -1 and x == 0 and y == 0:
            continue
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=POINT_COLOURS[int(label)],
                     outline=(255, 255, 255))
    return img


def write_prediction(out: str, pred: Prediction, *, checkpoint: str, keep_trace: bool) -> dict[str, Any]:
    """Write one request's files; returns its row."""
    rid = pred.request.request_id
    if not pred.error:
        storage.atomic_write_bytes(storage.join(out, "masks", f"{rid}.png"), _png(pred.mask_HW.astype(np.uint8) * 255))
        points = pred.trace["points"]
        labels = pred.trace["point_labels"]
        first_points = points[0] if len(points) else np.zeros((0, 2))
        first_labels = labels[0] if len(labels) else np.zeros((0,), np.int64)
        storage.atomic_write_bytes(storage.join(out, "overlays", f"{rid}.png"),
                                   _png_image(overlay(pred.rgb_HW3, pred.mask_HW, first_points, first_labels)))
        if keep_trace:
            buf = io.BytesIO()
            np.savez(buf, **{k: v for k, v in pred.trace.items() if isinstance(v, np.ndarray)})
            storage.atomic_write_bytes(storage.join(out, "traces", f"{rid}.npz"), buf.getvalue())
    row = prediction_row(pred, checkpoint=checkpoint)
    storage.atomic_write_parquet(storage.join(out, "parts", f"{rid}.parquet"), rows_table([row]))
    return row


def done_request_ids(out: str) -> set[str]:
    """Ids of the requests whose part is already written under `out`."""
    return {path.rsplit("/", 1)[-1][: -len(".parquet")] for path in storage.list_files(storage.join(out, "parts"),
                                                                                        "*.parquet")}


def rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    return validate_predictions(pa.Table.from_pylist(rows, schema=PREDICTION_SCHEMA))


def collect(out: str, request_ids: list[str]) -> pa.Table:
    """predictions.parquet from the parts of `request_ids`, in that order, written atomically."""
    tables = [storage.read_parquet(storage.join(out, "parts", f"{rid}.parquet")) for rid in request_ids]
    table = validate_predictions(pa.concat_tables(tables)) if tables else rows_table([])
    storage.atomic_write_parquet(storage.join(out, "predictions.parquet"), table)
    return table


def _first(x: np.ndarray | None) -> list[float]:
    return [] if x is None or len(x) == 0 else np.asarray(x[0], dtype=np.float32).reshape(-1).tolist()


def _png(array: np.ndarray) -> bytes:
    return _png_image(Image.fromarray(array))


def _png_image(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
