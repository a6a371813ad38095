"""The similarity-map pointing scores: patch coverage in the CLIP crop, AUC / hit per map, and the per-query-type
table built from result rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from demo.pointing import COLUMNS, patch_coverage, pointing_scores, similarity_pointing


def test_coverage_pools_the_mask_onto_the_patch_grid():
    mask = np.zeros((64, 64), np.uint8)
    mask[:16, :16] = 1
    mask[60:, 60:] = 1  # a quarter of the last patch
    coverage = patch_coverage(mask, 8).reshape(8, 8)
    assert coverage[:2, :2].tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert coverage[7, 7] == pytest.approx(0.25) and coverage.sum() == pytest.approx(4.25)


def test_coverage_follows_the_clip_centre_crop():
    mask = np.zeros((32, 64), np.uint8)  # landscape: CLIP keeps columns 16..47
    mask[:, :16] = 1  # outside the crop
    mask[:, 16:20] = 1  # the crop's first patch column
    coverage = patch_coverage(mask, 8).reshape(8, 8)
    assert (coverage[:, 0] == 1.0).all() and coverage[:, 1:].sum() == 0


def test_scores_of_a_map_that_follows_or_avoids_the_object():
    coverage = np.zeros(16)
    coverage[[0, 1]] = [1.0, 0.6]
    assert pointing_scores(coverage.copy(), coverage) == (1.0, 1.0)
    assert pointing_scores(-coverage, coverage) == (0.0, 0.0)
    assert pointing_scores(np.arange(16.0), np.zeros(16)) is None  # no object
    assert pointing_scores(np.arange(16.0), np.ones(16)) is None  # nothing outside it


def test_an_object_smaller_than_half_a_patch_targets_its_most_covered_patch():
    coverage = np.zeros(16)
    coverage[[5, 6]] = [0.3, 0.1]
    similarity = np.zeros(16)
    similarity[5] = 1.0
    assert pointing_scores(similarity, coverage) == (1.0, 1.0)


def test_the_table_averages_per_query_type_and_overall():
    mask = np.zeros((8, 8), np.uint8)
    mask[:4, :4] = 1  # the first of 4 patches (grid 2)
    row = {"dataset": "refcoco", "split": "val", "sample_key": "k", "error": "", "gt_present": True}
    rows = pd.DataFrame([
        {**row, "query_id": "a", "query_type": "colour", "similarity": [1.0, 0.0, 0.0, 0.0]},  # auc 1, hit
        {**row, "query_id": "b", "query_type": "shape", "similarity": [0.0, 1.0, 0.5, 0.5]},  # auc 0, miss
        {**row, "query_id": "c", "query_type": "shape", "similarity": [1.0, 0.0, 0.0, 0.0], "error": "bad"},
        {**row, "query_id": "d", "query_type": "shape", "similarity": []},  # no [SEG]
    ])
    masks = {("k", q): mask for q in "abcd"}
    table = similarity_pointing(rows, masks).set_index("query_type")
    assert list(similarity_pointing(rows, masks).columns) == COLUMNS
    assert table.loc["all", ["n", "auc", "hit"]].tolist() == [2, 0.5, 0.5]
    assert table.loc["colour", ["n", "auc", "hit"]].tolist() == [1, 1.0, 1.0]
    assert table.loc["shape", ["n", "auc", "hit"]].tolist() == [1, 0.0, 0.0]
    assert similarity_pointing(rows, {}).empty
