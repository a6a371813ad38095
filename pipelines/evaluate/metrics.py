"""Evaluation metrics, exactly as docs/metrics.md defines them, plus the project's Say score.

Per query: intersection I and union U of the binary prediction with the GT target, ignoring GT pixels == 255.
Per group of queries (dataset, split, subset), computed from the per-query rows only, so a recomputation from
`queries/` with plain pandas gives the same numbers:

    giou    = mean(I/U), a query with U == 0 scoring 1.0
    ciou    = sum(I) / sum(U)
    see     = mean(pred_present == gt_present)               (generation-mode rows)
    segment = sum(I) / sum(U) over generation-mode rows      (a mask for a false premise adds to U)
    say_mentions_gt, say_similarity = means over generation-mode false-premise rows that carry a gt_sent

The project's Say score (neither public repo releases one), per false-premise query with a `gt_sent`:
    say_mentions_gt: True when the generated text contains at least one of the "corrected words": the content
        words of `gt_sent` that the false-premise query does not contain (the object, attribute or relation the
        rewrite replaced). When the rewrite only deleted words (no such word exists), any content word of
        `gt_sent` counts. Words are lower-cased alphanumeric tokens, a trailing plural "s" is dropped, and a
        fixed list of function words is not content.
    say_similarity: token-level F1 (SQuAD style, bag of lower-cased alphanumeric tokens) between the generated
        text and `gt_sent`, in [0, 1].
Rows where Say does not apply store say_mentions_gt False and say_similarity NaN.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pycocotools import mask as mask_utils

IGNORE = 255
"""GT mask value excluded from both intersection and union."""

TEACHER_FORCED, GENERATE = "teacher_forced", "generate"
"""Values of the `mode` column."""

SUMMARY_KEYS = ("dataset", "split", "subset")
"""Default grouping of `summarize`."""

SUMMARY_INPUTS = [
    "dataset", "split", "subset", "query_type", "mode", "gt_present", "pred_present", "intersection", "union", "iou",
    "gt_sent", "say_mentions_gt", "say_similarity", "error",
]
"""The per-query columns `summarize` reads (plus any extra grouping column)."""

SUMMARY_METRICS = ("n", "giou", "ciou", "see", "segment", "say_mentions_gt", "say_similarity", "num_errors")
"""Metric columns `summarize` produces, in order."""

_FUNCTION_WORDS = frozenset(
    "a an the this that these those there here is are was were be been it its of in on at to for with by from "
    "and or but no not any some one ones which who whose what where image picture photo i can t find see".split()
)
_TOKEN = re.compile(r"[a-z0-9]+")


def intersection_union(pred_HW: np.ndarray, gt_HW: np.ndarray) -> tuple[int, int]:
    """(I, U) of a binary prediction against a GT mask in {0, 1, 255}; 255 pixels are excluded from both.

    Args:
        pred_HW: bool or {0, 1} (H, W) predicted foreground.
        gt_HW: uint8 (H, W) with 0 background, 1 target, 255 ignore.
    """
    if pred_HW.shape != gt_HW.shape:
        raise ValueError(f"prediction shape {pred_HW.shape} != GT mask shape {gt_HW.shape}")
    pred = pred_HW.astype(bool)
    valid = gt_HW != IGNORE
    target = gt_HW == 1
    pred_valid = pred & valid
    inter = int(np.count_nonzero(pred_valid & target))
    union = int(np.count_nonzero(pred_valid)) + int(np.count_nonzero(target)) - inter
    return inter, union


def query_iou(intersection: int, union: int) -> float:
    """I/U of one query; 1.0 when U == 0 (empty GT and empty prediction)."""
    return 1.0 if union == 0 else intersection / union


def encode_rle(mask_HW: np.ndarray) -> str:
    """Binary (H, W) mask -> COCO RLE as JSON text {"size": [H, W], "counts": str}."""
    rle = mask_utils.encode(np.asfortranarray(mask_HW.astype(np.uint8)))
    return json.dumps({"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")})


def decode_rle(text: str) -> np.ndarray:
    """COCO RLE JSON text (as `encode_rle` writes it) -> bool (H, W) mask."""
    rle = json.loads(text)
    return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _content_words(text: str) -> set[str]:
    return {_singular(t) for t in _tokens(text) if t not in _FUNCTION_WORDS}


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def say_mentions_gt(generated: str, gt_sent: str, query_text: str) -> bool:
    """Whether the correction names what the false premise replaced (see the module docstring)."""
    gt_words = _content_words(gt_sent)
    corrected = gt_words - _content_words(query_text) or gt_words
    return bool(corrected & _content_words(generated))


def say_similarity(generated: str, gt_sent: str) -> float:
    """Token-level F1 between the generated text and `gt_sent` (bags of lower-cased alphanumeric tokens)."""
    pred, ref = Counter(_tokens(generated)), Counter(_tokens(gt_sent))
    common = sum((pred & ref).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(pred.values()), common / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def say_applies(*, mode: str, gt_present: bool, gt_sent: str) -> bool:
    """Say is scored for generation-mode false premises that carry the true expression."""
    return mode == GENERATE and not gt_present and bool(gt_sent)


def summarize(queries: pd.DataFrame, by: Sequence[str] = SUMMARY_KEYS, *, add_overall: bool = True) -> pd.DataFrame:
    """Per-group metrics from per-query rows (columns of schemas.results.QUERY_SCHEMA).

    Error rows (non-empty `error`) are counted in `num_errors` and excluded from every metric. With `add_overall`
    and `subset` in `by`, the rows of every subset other than "all" are also summarised under
    subset "all" (ReasonSeg's short / long / overall).

    Returns:
        One row per group: the `by` columns then SUMMARY_METRICS, sorted by `by`.
    """
    by = list(by)
    frames = [queries]
    if add_overall and "subset" in by:
        frames.append(queries[queries["subset"] != "all"].assign(subset="all"))
    rows = pd.concat(frames, ignore_index=True)
    if rows.empty:
        return pd.DataFrame(columns=[*by, *SUMMARY_METRICS])
    out = [{**dict(zip(by, key if isinstance(key, tuple) else (key,))), **_group_metrics(g)}
           for key, g in rows.groupby(by, sort=True, dropna=False)]
    return pd.DataFrame(out, columns=[*by, *SUMMARY_METRICS]).reset_index(drop=True)


def _group_metrics(g: pd.DataFrame) -> dict[str, float | int]:
    errors = g["error"] != ""
    ok = g[~errors]
    gen = ok[ok["mode"] == GENERATE]
    say = gen[(~gen["gt_present"]) & (gen["gt_sent"] != "")]
    return {
        "n": int(len(ok)),
        "giou": float(ok["iou"].mean()) if len(ok) else math.nan,
        "ciou": _ratio(ok["intersection"].sum(), ok["union"].sum()) if len(ok) else math.nan,
        "see": float((gen["pred_present"] == gen["gt_present"]).mean()) if len(gen) else math.nan,
        "segment": _ratio(gen["intersection"].sum(), gen["union"].sum()) if len(gen) else math.nan,
        "say_mentions_gt": float(say["say_mentions_gt"].astype(float).mean()) if len(say) else math.nan,
        "say_similarity": float(say["say_similarity"].mean()) if len(say) else math.nan,
        "num_errors": int(errors.sum()),
    }


def _ratio(inter: int, union: int) -> float:
    # cIoU has no special case in the field's code; an all-empty group (U == 0) is reported as 1.0 like gIoU's rule.
    return 1.0 if union == 0 else float(inter) / float(union)
