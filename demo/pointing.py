"""Does the `[SEG]` similarity map point at the queried object? (The map is what SasP turns into SAM's points.)

For every scored query whose object is present, the GT mask is cropped as CLIP crops the image (the centre square of
the shorter side) and pooled onto the P = G x G patch grid of the map. Patches at least half covered are the target
(for an object smaller than half a patch, the most covered patches). Two scores per query:
    auc  the probability that a target patch is more similar to `[SEG]` than a non-target one (0.5: chance);
    hit  whether the most similar patch touches the object.
A random model scores about 0.5; a map that follows the query scores near 1 already before READ's training when the
LLM's `[SEG]` state and patch states share the query's attributes (a pretrained LLaVA), which is what lets READ's
SasP points land on the object from the start.

Legend: H, W = original image size, G = patch grid side, P = G * G.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from demo.vision.scenes import cell_cover
from pipelines.evaluate.shards import BadSample, list_shards, read_shard

GROUP = ["dataset", "split", "query_type"]
COLUMNS = [*GROUP, "n", "auc", "hit"]


def patch_coverage(mask_HW: np.ndarray, grid: int) -> np.ndarray:
    """Fraction of each patch of the CLIP crop covered by `mask_HW` (> 0 is the object): (G * G,) float, row-major."""
    H, W = mask_HW.shape
    side = min(H, W)
    top, left = (H - side) // 2, (W - side) // 2
    return cell_cover(mask_HW[top : top + side, left : left + side] > 0, grid).reshape(-1)


def target_patches(coverage_P: np.ndarray) -> np.ndarray:
    """The object's patches: those at least half covered, or the most covered ones for a small object: (P,) bool."""
    if (coverage_P >= 0.5).any():
        return coverage_P >= 0.5
    return (coverage_P == coverage_P.max()) & (coverage_P > 0)


def pointing_scores(similarity_P: np.ndarray, coverage_P: np.ndarray) -> tuple[float, float] | None:
    """(auc, hit) of one similarity map against its patch coverage; None when the object covers no or every patch."""
    if coverage_P.max() <= 0:
        return None
    target = target_patches(coverage_P)
    if target.all():
        return None
    pos, neg = similarity_P[target], similarity_P[~target]
    ranks = np.concatenate([pos, neg]).argsort().argsort() + 1.0  # ties are rare in float maps
    auc = (ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))
    return float(auc), float(coverage_P[int(np.argmax(similarity_P))] > 0)


def gt_masks(data: list[str]) -> dict[tuple[str, str], np.ndarray]:
    """(sample_key, query_id) -> the query's GT mask (H, W) uint8, for every present object of the shards in `data`."""
    masks = {}
    for url in list_shards(data):
        for item in read_shard(url):
            if isinstance(item, BadSample):
                continue
            for query in item.queries:
                if query.mask is not None:
                    masks[(item.key, query.query_id)] = (query.mask == 1).astype(np.uint8)
    return masks


def similarity_pointing(queries: pd.DataFrame, masks: dict[tuple[str, str], np.ndarray]) -> pd.DataFrame:
    """Mean auc and hit per (dataset, split, query_type), plus an "all" row per (dataset, split).

    `queries` are result rows (schemas.results.QUERY_SCHEMA: sample_key, query_id, similarity, ...); rows without a
    similarity map, an error, or a GT mask in `masks` are left out. Returns COLUMNS.
    """
    scored = []
    for row in queries[(queries["error"] == "") & queries["gt_present"]].itertuples(index=False):
        similarity = np.asarray(row.similarity, dtype=np.float64)
        grid = math.isqrt(similarity.size)
        mask = masks.get((row.sample_key, row.query_id))
        if mask is None or grid == 0 or grid * grid != similarity.size:
            continue
        scores = pointing_scores(similarity, patch_coverage(mask, grid))
        if scores is not None:
            scored.append({"dataset": row.dataset, "split": row.split, "query_type": row.query_type or "",
                           "auc": scores[0], "hit": scores[1]})
    if not scored:
        return pd.DataFrame(columns=COLUMNS)
    frame = pd.DataFrame(scored)
    overall = frame.assign(query_type="all")
    table = pd.concat([overall, frame]).groupby(GROUP, sort=False).agg(
        n=("auc", "size"), auc=("auc", "mean"), hit=("hit", "mean")).reset_index()
    return table[COLUMNS]
