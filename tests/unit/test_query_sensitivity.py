"""pipelines.results.query_sensitivity on hand-made predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.evaluate.metrics import encode_rle
from pipelines.results import query_sensitivity


def _mask(x0: int, x1: int) -> str:
    mask = np.zeros((8, 8), bool)
    mask[2:6, x0:x1] = True
    return encode_rle(mask)


def _row(key: str, rle: str, *, present: bool = True, error: str = "", dataset: str = "refcoco") -> dict:
    return {"dataset": dataset, "split": "val", "sample_key": key, "pred_mask_rle": rle, "gt_present": present,
            "error": error}


def test_same_mask_for_every_query_scores_one_and_disjoint_masks_zero():
    queries = pd.DataFrame([
        _row("a", _mask(0, 4)), _row("a", _mask(0, 4)), _row("a", _mask(0, 4)),  # query-blind image: 3 pairs of IoU 1
        _row("b", _mask(0, 2)), _row("b", _mask(4, 8)),  # grounded image: 1 pair of IoU 0
        _row("b", _mask(0, 8), present=False),  # false premise: not a pair
        _row("c", _mask(0, 4)),  # a single query: no pair
        _row("d", _mask(0, 4), error="bad image"), _row("d", _mask(0, 4)),  # error rows are skipped
    ])
    table = query_sensitivity(queries)
    assert table.to_dict("records") == [{"dataset": "refcoco", "split": "val", "pairs": 4, "same_mask_iou": 0.75}]


def test_half_overlap_and_empty_predictions():
    queries = pd.DataFrame([_row("a", _mask(0, 4)), _row("a", _mask(2, 6)),  # IoU 2/6
                            _row("b", _mask(0, 0)), _row("b", _mask(0, 0))])  # both empty: identical, IoU 1
    assert query_sensitivity(queries)["same_mask_iou"].item() == pytest.approx((1 / 3 + 1) / 2)
