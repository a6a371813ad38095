"""Hand-made metric cases: ignore pixels, empty GT + empty prediction, false premises, See, Say, RLE."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipelines.evaluate import metrics
from pipelines.evaluate.rows import RunInfo, error_row, query_row
from pipelines.evaluate.tables import rows_to_table
from schemas.sample import Query, ShardSample

RUN = RunInfo(run_id="r", checkpoint="c")


def _sample(dataset: str, queries: list[Query], h: int = 4, w: int = 4) -> ShardSample:
    return ShardSample(key="k", dataset=dataset, split="val", image_bytes=b"", image_format="png", height=h, width=w,
                       queries=queries)


def _mask(cells: list[tuple[int, int]], h: int = 4, w: int = 4, value: int = 1) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    for y, x in cells:
        m[y, x] = value
    return m


def test_ignore_pixels_are_excluded_from_intersection_and_union():
    gt = _mask([(0, 0), (0, 1)])
    gt[1, 1] = 255
    gt[2, 2] = 255
    pred = _mask([(0, 0), (1, 1), (3, 3)]).astype(bool)  # (1,1) is on ignore -> not counted
    inter, union = metrics.intersection_union(pred, gt)
    assert (inter, union) == (1, 3)  # pred valid {00, 33}, gt {00, 01}
    assert metrics.query_iou(inter, union) == pytest.approx(1 / 3)


def test_empty_gt_and_empty_prediction_scores_one():
    inter, union = metrics.intersection_union(np.zeros((4, 4), bool), np.zeros((4, 4), np.uint8))
    assert (inter, union) == (0, 0)
    assert metrics.query_iou(inter, union) == 1.0


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        metrics.intersection_union(np.zeros((3, 4), bool), np.zeros((4, 4), np.uint8))


def test_rle_round_trip_and_counts_are_text():
    mask = np.random.default_rng(0).random((7, 9)) > 0.5
    text = metrics.encode_rle(mask)
    assert '"counts": "' in text
    assert np.array_equal(metrics.decode_rle(text), mask)


def _gen_rows() -> pd.DataFrame:
    """Four generation-mode queries on one FP image: two true premises, two false premises."""
    obj = _mask([(0, 0), (0, 1), (1, 0), (1, 1)])
    sample = _sample("fprefcoco", [
        Query(query_id="t1", text="the red cup", mask=obj),
        Query(query_id="t2", text="the red cup left", mask=obj),
        Query(query_id="f1", text="the green cup", exists=False, gt_sent="the red cup", edit="attribute"),
        Query(query_id="f2", text="the blue bowl", exists=False, gt_sent="the red cup", edit="object"),
    ])
    q = {x.query_id: x for x in sample.queries}
    full = obj.astype(bool)
    half = _mask([(0, 0), (0, 1)]).astype(bool)
    none = np.zeros((4, 4), bool)
    rows = [
        query_row(run=RUN, sample=sample, shard="s", query=q["t1"], mode="generate", pred_HW=full,
                  generated_text="Sure, [SEG]."),
        query_row(run=RUN, sample=sample, shard="s", query=q["t2"], mode="generate", pred_HW=none,
                  generated_text="no"),
        # a false premise that still got a mask: its predicted pixels add to Segment's union
        query_row(run=RUN, sample=sample, shard="s", query=q["f1"], mode="generate", pred_HW=half,
                  generated_text="Sure, [SEG]."),
        query_row(run=RUN, sample=sample, shard="s", query=q["f2"], mode="generate", pred_HW=none,
                  generated_text="There is no blue bowl, but there is the red cup."),
    ]
    return rows_to_table(rows).to_pandas()


def test_false_premise_with_mask_adds_to_segment_union_and_see():
    df = _gen_rows()
    by_id = df.set_index("query_id")
    assert (by_id.loc["f1", "intersection"], by_id.loc["f1", "union"]) == (0, 2)
    assert by_id.loc["f2", "iou"] == 1.0  # empty GT, empty prediction
    summary = metrics.summarize(df)
    assert len(summary) == 1
    row = summary.iloc[0]
    # Segment = (4 + 0 + 0 + 0) / (4 + 4 + 2 + 0)
    assert row["segment"] == pytest.approx(4 / 10)
    assert row["ciou"] == pytest.approx(4 / 10)
    # See: t1 right (present/present), t2 wrong, f1 wrong (mask for a false premise), f2 right
    assert row["see"] == pytest.approx(0.5)
    assert row["giou"] == pytest.approx((1 + 0 + 0 + 1) / 4)
    assert row["n"] == 4 and row["num_errors"] == 0


def test_rows_record_the_false_premise_edit():
    df = _gen_rows().set_index("query_id")
    assert df["edit"].to_dict() == {"t1": "", "t2": "", "f1": "attribute", "f2": "object"}
    assert error_row(run=RUN, shard="s", sample_key="k", dataset="d", split="v", error="bad")["edit"] == ""


def test_say_score_on_false_premises_only():
    df = _gen_rows().set_index("query_id")
    # true premises: Say does not apply
    assert not df.loc["t1", "say_mentions_gt"] and math.isnan(df.loc["t1", "say_similarity"])
    # f1 said nothing about "red" -> does not mention the corrected word
    assert not df.loc["f1", "say_mentions_gt"]
    # f2 names "red cup" (the words the rewrite replaced)
    assert df.loc["f2", "say_mentions_gt"]
    assert 0 < df.loc["f2", "say_similarity"] < 1
    summary = metrics.summarize(df.reset_index()).iloc[0]
    assert summary["say_mentions_gt"] == pytest.approx(0.5)
    assert summary["say_similarity"] == pytest.approx(df.loc[["f1", "f2"], "say_similarity"].mean())


def test_say_definitions():
    assert metrics.say_mentions_gt("there is a blue cup", "the blue cup", "the red cup")
    assert not metrics.say_mentions_gt("there is a red cup", "the blue cup", "the red cup")
    assert metrics.say_mentions_gt("the dogs are here", "the dog", "the dog on the left")  # deletion-only rewrite
    assert metrics.say_similarity("the red cup", "the red cup") == pytest.approx(1.0)
    assert metrics.say_similarity("a", "the red cup") == 0.0
    # 2 common of 4 generated and 3 reference tokens: P=1/2, R=2/3
    assert metrics.say_similarity("red cup over there", "the red cup") == pytest.approx(2 * (1 / 2) * (2 / 3) / (7 / 6))


def test_reasonseg_subsets_and_overall_and_errors():
    obj = _mask([(0, 0), (0, 1)])
    sample = _sample("ReasonSeg", [
        Query(query_id="s", text="the cup", mask=obj),
        Query(query_id="l", text="what holds the tea?", is_sentence=True, mask=obj),
    ])
    pred = _mask([(0, 0)]).astype(bool)
    rows = [query_row(run=RUN, sample=sample, shard="x", query=q, mode="teacher_forced", pred_HW=pred)
            for q in sample.queries]
    rows.append(error_row(run=RUN, shard="x", sample_key="bad", dataset="ReasonSeg", split="val", error="boom"))
    summary = metrics.summarize(rows_to_table(rows).to_pandas()).set_index("subset")
    assert sorted(summary.index) == ["all", "long", "short"]
    assert summary.loc["short", "n"] == 1 and summary.loc["all", "n"] == 2
    assert summary.loc["all", "giou"] == pytest.approx(0.5)
    assert summary.loc["all", "num_errors"] == 1 and summary.loc["short", "num_errors"] == 0
    assert math.isnan(summary.loc["all", "see"])  # teacher forced: no See
