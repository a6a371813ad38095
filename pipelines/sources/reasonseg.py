"""ReasonSeg reader: `reason_seg/ReasonSeg/<split>/<stem>.jpg` + `<stem>.json` (LabelMe-like), one sample per image.

The JSON is read as UTF-8, then as cp1252 (LISA/READ). The mask is READ's `get_mask_from_json` drawn with OpenCV
(`rasterise_shapes`): `flag` shapes skipped, `ignore` shapes 255, others 1, largest first, 1 px outline plus fill.
Every `text` entry is a query "<stem>:<i>" sharing that mask; FP-Aug `false_premise_QA` entries become absent
queries "<stem>:fp<k>" (no mask, the answer kept in `extra`). A JSON recording `imageHeight`/`imageWidth` other than
the upright image's size is quarantined (`size_mismatch`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pipelines.sources.base import BadImageError, LoadResult, Reject, WorkUnit, estimate_bytes, image_size, read_image
from schemas.sample import Query, ShardSample, make_key

IGNORE = 255


def rasterise_shapes(shapes: list[dict[str, Any]], height: int, width: int) -> np.ndarray:
    """ReasonSeg shapes -> uint8 (H, W) mask with 0 background, 1 target, 255 ignore, drawn as READ draws them.

    READ's `get_mask_from_json` rule, with OpenCV: shapes labelled `flag` (case-insensitive) are skipped; each other
    shape's area is measured by drawing it (`cv2.polylines` closed, thickness 1, then `cv2.fillPoly`) on a scratch
    mask; shapes are then painted largest area first (`np.argsort(areas)[::-1]`, as READ orders them) with the same
    two calls, value 255 when the label contains `ignore`, else 1, so smaller shapes overwrite larger ones. Points
    are truncated to int32 as
    `np.array(points, dtype=np.int32)` does; shapes of 1 or 2 points are drawn too (a dot or a line), and points
    outside the image are clipped by OpenCV.

    Args:
        shapes: [{"label": str, "points": [[x, y], ...]}, ...].
        height, width: image size (the decoded, EXIF-oriented image).

    Raises:
        ValueError: a non-flag shape has no points or unreadable points ("bad_polygon: ...").
    """
    polygons: list[tuple[int, np.ndarray, int]] = []  # (area, points (1, V, 2) int32, value)
    for i, shape in enumerate(shapes):
        label = str(shape.get("label", ""))
        if label.lower() == "flag":
            continue
        try:
            pts = np.array([shape.get("points")], dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"bad_polygon: shape {i} ({label!r}) has unreadable points: {err}") from err
        if pts.ndim != 3 or pts.shape[1] == 0 or pts.shape[2] != 2 or not np.isfinite(pts).all():
            raise ValueError(f"bad_polygon: shape {i} ({label!r}) needs a non-empty list of [x, y] points")
        pts = pts.astype(np.int32)  # truncation toward zero, as np.array(points, dtype=np.int32)
        value = IGNORE if "ignore" in label.lower() else 1
        scratch = np.zeros((height, width), dtype=np.uint8)
        _draw(scratch, pts, 1)
        polygons.append((int(scratch.sum(dtype=np.int64)), pts, value))
    # Largest first, in READ's exact order: np.argsort of the areas, reversed (ties come out in reverse file order).
    order = np.argsort(np.array([area for area, _, _ in polygons], dtype=np.int64))[::-1]
    mask = np.zeros((height, width), dtype=np.uint8)
    for k in order:
        _, pts, value = polygons[int(k)]
        _draw(mask, pts, value)
    return mask


def _draw(canvas: np.ndarray, pts_1V2: np.ndarray, value: int) -> None:
    """READ's drawing of one shape: closed 1-px outline, then fill, both with `value` (in place)."""
    cv2.polylines(canvas, pts_1V2, True, value, 1)
    cv2.fillPoly(canvas, pts_1V2, value)


@dataclass(kw_only=True)
class ReasonSegSource:
    """Reads `<root>/reason_seg/ReasonSeg/<split>/`."""

    dataset: str
    root: str
    split: str

    @property
    def folder(self) -> str:
        return os.path.join(self.root, "reason_seg", "ReasonSeg", self.split)

    def check(self) -> None:
        """Raise ValueError naming the missing folder (a configuration error, not bad data)."""
        if not os.path.isdir(self.folder):
            raise ValueError(
                f"root: ReasonSeg folder {self.folder} does not exist; point root= at the folder holding "
                f"reason_seg/ReasonSeg/{self.split}/ or pick another split="
            )

    def index(self) -> tuple[list[WorkUnit], list[Reject]]:
        self.check()
        names = sorted(os.listdir(self.folder))
        jsons = {n[:-5] for n in names if n.endswith(".json")}
        images = {os.path.splitext(n)[0]: n for n in names if n.lower().endswith((".jpg", ".jpeg", ".png"))}
        units, rejects = [], []
        for stem in sorted(set(images) - jsons):
            rejects.append(Reject(source=os.path.join(self.folder, images[stem]), key=stem, num_queries=0,
                                  reason=f"missing_json: image {images[stem]} has no {stem}.json"))
        for stem in sorted(jsons):
            json_path = os.path.join(self.folder, stem + ".json")
            try:
                meta = read_labelme_json(json_path)
            except (OSError, ValueError) as err:
                rejects.append(Reject(source=json_path, key=stem, num_queries=0,
                                      reason=f"bad_json: {json_path}: {err} (its queries cannot be counted)"))
                continue
            try:
                payload = _payload_of(meta)
            except ValueError as err:
                rejects.append(Reject(source=json_path, key=stem, num_queries=_queries_held(meta),
                                      reason=f"bad_json: {json_path}: {err}"))
                continue
            num_queries = len(payload["text"]) + len(payload["false_premise_QA"])
            image_name = images.get(stem)
            if image_name is None:
                rejects.append(Reject(source=json_path, key=stem, num_queries=num_queries,
                                      reason=f"missing_image: no {stem}.jpg next to {json_path}"))
                continue
            image_path = os.path.join(self.folder, image_name)
            payload["image"] = image_path
            payload["stem"] = stem
            size = image_size(image_path) or (meta.get("imageHeight") or 1024, meta.get("imageWidth") or 1024)
            est = estimate_bytes(os.path.getsize(image_path), int(size[0]), int(size[1]), 1)
            units.append(WorkUnit(key=make_key(stem), source=json_path, num_queries=num_queries, est_bytes=est,
                                  payload=payload))
        units.sort(key=lambda u: u.key)
        return units, rejects

    def load(self, unit: WorkUnit) -> LoadResult:
        p = unit.payload
        n = unit.num_queries or 0
        try:
            data, fmt, height, width = read_image(p["image"], recorded=p["recorded_size"],
                                                  recorded_by=f"{unit.source} (imageHeight/Width)")
        except BadImageError as err:
            source = unit.source if err.code == "size_mismatch" else p["image"]  # the JSON recorded the wrong size
            return LoadResult(rejects=[Reject(source=source, key=unit.key, num_queries=n, reason=str(err))])
        try:
            mask = rasterise_shapes(p["shapes"], height, width)
        except ValueError as err:
            return LoadResult(rejects=[Reject(source=unit.source, key=unit.key, num_queries=n, reason=str(err))])
        types = p["query_types"]
        queries = [
            Query(query_id=f"{p['stem']}:{i}", text=text, is_sentence=p["is_sentence"], exists=True, mask=mask,
                  query_type=types[i] if i < len(types) else None)
            for i, text in enumerate(p["text"])
        ]
        for k, (question, is_sentence, answer) in enumerate(p["false_premise_QA"]):
            queries.append(Query(query_id=f"{p['stem']}:fp{k}", text=question, is_sentence=bool(is_sentence),
                                 exists=False, query_type="false_premise", extra={"answer": answer}))
        extra = {"reasonseg": p["extra"]} if p["extra"] else {}
        sample = ShardSample(key=unit.key, dataset=self.dataset, split=self.split, image_bytes=data, image_format=fmt,
                             height=height, width=width, queries=queries, source=unit.source, extra=extra)
        return LoadResult(sample=sample)


_KNOWN_KEYS = {"text", "is_sentence", "shapes", "false_premise_QA", "type", "query_types", "imageData", "imagePath",
               "imageHeight", "imageWidth", "version", "flags", "lineColor", "fillColor"}


def read_labelme_json(path: str) -> Any:
    """Parse a ReasonSeg JSON as LISA/READ do: UTF-8 first, then again as cp1252 when that fails.

    Raises:
        OSError: the file cannot be read.
        ValueError: the bytes are JSON in neither encoding (the message says what both attempts found).
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as utf8_err:
        try:
            return json.loads(data.decode("cp1252"))
        except (UnicodeDecodeError, json.JSONDecodeError) as cp1252_err:
            raise ValueError(f"not JSON as UTF-8 ({utf8_err}) nor as cp1252 ({cp1252_err})") from cp1252_err


def _queries_held(meta: Any) -> int:
    """Queries a parsed but invalid ReasonSeg JSON holds (its `text` entries), for the rejects' accounting."""
    text = meta.get("text") if isinstance(meta, dict) else None
    return 1 if isinstance(text, str) else len(text) if isinstance(text, list) else 0


def _payload_of(meta: Any) -> dict[str, Any]:
    """Validate a ReasonSeg JSON and keep what loading needs (drops LabelMe's base64 `imageData`)."""
    if not isinstance(meta, dict):
        raise ValueError(f"top level must be an object, got {type(meta).__name__}")
    text = meta.get("text")
    if isinstance(text, str):
        text = [text]
    if not isinstance(text, list) or not text or not all(isinstance(t, str) for t in text):
        raise ValueError("'text' must be a non-empty list of strings")
    shapes = meta.get("shapes")
    if not isinstance(shapes, list) or not all(isinstance(s, dict) for s in shapes):
        raise ValueError("'shapes' must be a list of {label, points} objects")
    fp = meta.get("false_premise_QA") or []
    if not isinstance(fp, list) or not all(isinstance(x, (list, tuple)) and len(x) == 3 for x in fp):
        raise ValueError("'false_premise_QA' must be a list of [question, is_sentence, answer]")
    types = meta.get("query_types", meta.get("type"))
    if isinstance(types, str) or types is None:
        types = [types] * len(text)
    plain = (str, int, float, bool, list, dict)
    extra = {k: v for k, v in meta.items() if k not in _KNOWN_KEYS and isinstance(v, plain)}
    recorded = (meta.get("imageHeight"), meta.get("imageWidth"))
    return {
        "recorded_size": list(recorded) if all(isinstance(v, int) and v > 0 for v in recorded) else None,
        "text": text,
        "is_sentence": bool(meta.get("is_sentence", False)),
        "shapes": [{"label": s.get("label", ""), "points": s.get("points")} for s in shapes],
        "false_premise_QA": [[str(q), bool(s), str(a)] for q, s, a in fp],
        "query_types": [t if isinstance(t, str) else None for t in types],
        "extra": extra,
    }
