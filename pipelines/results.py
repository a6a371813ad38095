"""Reading evaluation outputs into pandas, and comparing two evaluations.

    summary, queries = load("runs/eval-a")
    queries.sort_values("iou").head(10)                                   # worst queries
    queries.groupby(["dataset", "subset"])[["intersection", "union"]].sum()   # per-subset cIoU parts
    pd.crosstab(queries.gt_present, queries.pred_present)                 # false-premise confusion
    compare("runs/eval-a", "runs/eval-b")                                 # per-metric deltas
    query_sensitivity(queries)                                            # does the prediction follow the text?
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from pipelines import storage
from pipelines.evaluate.metrics import SUMMARY_METRICS, decode_rle
from pipelines.evaluate.tables import read_queries, read_summary

KEYS = ["dataset", "split", "subset"]
METRICS = list(SUMMARY_METRICS)


def load(out: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, queries) DataFrames of a committed evaluation folder.

    Raises ValueError naming the folder when it holds no committed evaluation.
    """
    summary_uri, queries_uri = storage.join(out, "summary.parquet"), storage.join(out, "queries")
    if not storage.exists(summary_uri) or not storage.exists(queries_uri):
        raise ValueError(
            f"{out}: no committed evaluation (summary.parquet and queries/ are written by jobs.evaluate at the end); "
            "re-run jobs.evaluate with this out= to finish it"
        )
    return read_summary(summary_uri), read_queries(queries_uri)


def compare(out_a: str, out_b: str, *, allow_mixed_protocols: bool = False) -> pd.DataFrame:
    """Per (dataset, split, subset): every metric of A and B and the delta B - A.

    Raises ValueError when A and B were evaluated under different protocols (their numbers measure different
    things), unless `allow_mixed_protocols`.

    Returns:
        Columns KEYS, then for each metric m: m_a, m_b, m_delta. Groups present in only one run have NaN on the
        other side.
    """
    summary_a, _ = load(out_a)
    summary_b, _ = load(out_b)
    protocols = [sorted(set(s["protocol"])) for s in (summary_a, summary_b)]
    if protocols[0] != protocols[1] and not allow_mixed_protocols:
        raise ValueError(f"{out_a} was evaluated with protocol {protocols[0]} and {out_b} with {protocols[1]}: the "
                         "numbers are not comparable; re-evaluate one of them with the other's protocol= or pass "
                         "--allow-mixed-protocols")
    merged = summary_a[KEYS + METRICS].merge(summary_b[KEYS + METRICS], on=KEYS, how="outer", suffixes=("_a", "_b"))
    columns = list(KEYS)
    for metric in METRICS:
        merged[f"{metric}_delta"] = merged[f"{metric}_b"].astype(float) - merged[f"{metric}_a"].astype(float)
        columns += [f"{metric}_a", f"{metric}_b", f"{metric}_delta"]
    return merged[columns].sort_values(KEYS).reset_index(drop=True)


def query_sensitivity(queries: pd.DataFrame) -> pd.DataFrame:
    """How much the predicted mask changes with the query text, per (dataset, split).

    For every image with two or more scored queries whose object is present, the IoU between the predicted masks of
    each pair of its queries. A model that ignores the text (objectness only) predicts the same mask for every query
    of an image: `same_mask_iou` near 1. A grounded model scores about the share of query pairs that name the same
    object. Returns columns dataset, split, pairs, same_mask_iou (mean pairwise IoU; NaN without pairs).
    """
    rows = []
    scored = queries[queries["gt_present"] & (queries["error"] == "")]
    for (dataset, split), group in scored.groupby(["dataset", "split"], sort=True):
        ious = []
        for _, image in group.groupby("sample_key", sort=False):
            masks = [decode_rle(text).astype(bool) for text in image["pred_mask_rle"]]
            for a, b in itertools.combinations(masks, 2):
                union = np.logical_or(a, b).sum()
                ious.append(np.logical_and(a, b).sum() / union if union else 1.0)
        rows.append({"dataset": dataset, "split": split, "pairs": len(ious),
                     "same_mask_iou": float(np.mean(ious)) if ious else float("nan")})
    return pd.DataFrame(rows, columns=["dataset", "split", "pairs", "same_mask_iou"])


def format_summary(summary: pd.DataFrame) -> str:
    """The summary as a fixed-width text table (metrics in %, NaN as '-')."""
    table = summary[KEYS + METRICS].copy()
    for metric in METRICS[1:-1]:
        table[metric] = table[metric].map(lambda v: "-" if pd.isna(v) else f"{100 * v:.2f}")
    return table.to_string(index=False)


def format_compare(deltas: pd.DataFrame) -> str:
    """The deltas of `compare` as a text table (percentage points, NaN as '-')."""
    table = deltas[KEYS].copy()
    for metric in METRICS[1:-1]:
        table[f"d_{metric}"] = deltas[f"{metric}_delta"].map(lambda v: "-" if pd.isna(v) else f"{100 * v:+.2f}")
    table["d_n"] = deltas["n_delta"]
    return table.to_string(index=False)
