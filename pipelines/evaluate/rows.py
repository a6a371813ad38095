"""One result row per query (the columns of schemas.results.QUERY_SCHEMA), scored or errored.

Legend: H, W = original image size; P = similarity-map cells (side*side); K = SasP points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.evaluate import metrics
from pipelines.evaluate.protocol import is_reasonseg
from schemas.arrow import empty_row
from schemas.results import QUERY_SCHEMA
from schemas.sample import Query, ShardSample


@dataclass(frozen=True, kw_only=True)
class RunInfo:
    """Identifies an evaluation run in every row it writes."""

    run_id: str
    checkpoint: str


def subset_of(dataset: str, query: Query) -> str:
    """ReasonSeg queries are "long" (is_sentence) or "short"; every other dataset's are "all"."""
    if is_reasonseg(dataset):
        return "long" if query.is_sentence else "short"
    return "all"


def gt_target(sample: ShardSample, query: Query) -> np.ndarray:
    """The GT mask in {0, 1, 255}: the query's mask, or zeros for an absent object.  # (H, W) uint8"""
    if query.mask is None:
        return np.zeros((sample.height, sample.width), np.uint8)
    return query.mask


def query_row(
    *,
    run: RunInfo,
    sample: ShardSample,
    shard: str,
    query: Query,
    mode: str,
    pred_HW: np.ndarray,
    protocol: str = "clean",
    prompt: str = "",
    template_id: str = "",
    generated_text: str = "",
    similarity_P: np.ndarray | None = None,
    points_K2: np.ndarray | None = None,
    point_labels_K: np.ndarray | None = None,
    latency_ms: float = 0.0,
) -> dict[str, Any]:
    """Score one query's binary prediction against its GT and build its row.

    Args:
        pred_HW: bool (H, W) predicted foreground (zeros when the model produced no mask).
        protocol / prompt / template_id: the evaluation protocol, the exact conversation text fed, and which
            templates built it.
        similarity_P: float (P,) [SEG] similarity map, row-major; None when no [SEG] was produced.
        points_K2: float (K, 2) SasP points (x, y) in original pixels; point_labels_K: (K,) in {1, 0, -1}.
    """
    gt_HW = gt_target(sample, query)
    inter, union = metrics.intersection_union(pred_HW, gt_HW)
    gt_sent = query.gt_sent or ""
    labels = np.asarray(point_labels_K if point_labels_K is not None else [], dtype=np.int8).reshape(-1)
    say = metrics.say_applies(mode=mode, gt_present=query.exists, gt_sent=gt_sent)
    return {
        "run_id": run.run_id,
        "checkpoint": run.checkpoint,
        "dataset": sample.dataset,
        "split": sample.split,
        "subset": subset_of(sample.dataset, query),
        "mode": mode,
        "protocol": protocol,
        "prompt": prompt,
        "template_id": template_id,
        "sample_key": sample.key,
        "shard": shard,
        "query_id": query.query_id,
        "query_text": query.text,
        "query_type": query.query_type or "",
        "edit": query.edit or "",
        "is_sentence": bool(query.is_sentence),
        "gt_present": bool(query.exists),
        "pred_present": bool(pred_HW.any()),
        "intersection": inter,
        "union": union,
        "iou": metrics.query_iou(inter, union),
        "generated_text": generated_text,
        "gt_sent": gt_sent,
        "say_mentions_gt": metrics.say_mentions_gt(generated_text, gt_sent, query.text) if say else False,
        "say_similarity": metrics.say_similarity(generated_text, gt_sent) if say else math.nan,
        "pred_mask_rle": metrics.encode_rle(pred_HW),
        "similarity": _floats(similarity_P),
        "points_xy": _floats(points_K2),
        "point_labels": labels.tolist(),
        "num_pos_points": int((labels == 1).sum()),
        "num_neg_points": int((labels == 0).sum()),
        "num_pad_points": int((labels == -1).sum()),
        "latency_ms": float(latency_ms),
        "error": "",
    }


def error_row(*, run: RunInfo, shard: str, sample_key: str, dataset: str, split: str, error: str,
              protocol: str = "") -> dict[str, Any]:
    """The row recording a sample that could not be decoded or scored (never silently dropped): every column of
    QUERY_SCHEMA at its empty value (`empty_row`), plus what identifies the sample and the reason."""
    return empty_row(QUERY_SCHEMA) | {
        "run_id": run.run_id, "checkpoint": run.checkpoint, "dataset": dataset or "unknown",
        "split": split or "unknown", "subset": "all", "protocol": protocol, "sample_key": sample_key, "shard": shard,
        "iou": math.nan, "say_similarity": math.nan, "error": error,
    }


def _floats(x: np.ndarray | None) -> list[float]:
    return [] if x is None else np.asarray(x, dtype=np.float32).reshape(-1).tolist()
