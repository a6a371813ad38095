"""The demo's tables: per-query-type summaries, side by side, the cIoU ratio, the grounding goal, the curve."""

import pandas as pd
import pytest

from demo.report import (BY_EDIT, ciou_ratio, false_premises_by_edit, format_curve,
                         format_language_stages, format_side_by_side, grounding_reached, language_stages,
                         learning_curve, per_query_type, side_by_side, with_summary_columns)
from schemas.results import QUERY_SCHEMA, SUMMARY_SCHEMA


def _rows(spec: list[tuple[str, str, int, int, bool, bool]]) -> pd.DataFrame:
    """(dataset, query_type, intersection, union, gt_present, pred_present) -> rows with QUERY_SCHEMA's columns."""
    rows = []
    for dataset, qtype, inter, union, gt, pred in spec:
        row = dict.fromkeys(QUERY_SCHEMA.names, "")
        row.update(dataset=dataset, split="val", subset="all", query_type=qtype, intersection=inter, union=union,
                   iou=1.0 if union == 0 else inter / union, gt_present=gt, pred_present=pred,
                   mode="generate" if dataset.startswith("fp") else "teacher_forced", error="")
        rows.append(row)
    return pd.DataFrame(rows)


def test_per_query_type_adds_an_all_row_with_pooled_ciou():
    table = per_query_type(_rows([("refcoco", "colour", 1, 4, True, True), ("refcoco", "", 3, 4, True, True)]))
    by_type = table.set_index("query_type")["ciou"]
    assert by_type["colour"] == pytest.approx(0.25) and by_type["untyped"] == pytest.approx(0.75)
    assert by_type["all"] == pytest.approx(4 / 8)


def test_side_by_side_and_ratio():
    untrained = per_query_type(_rows([("refcoco", "shape", 1, 10, True, True)]))
    trained = per_query_type(_rows([("refcoco", "shape", 6, 10, True, True)]))
    table = side_by_side({"untrained": untrained, "trained": trained})
    assert list(table.columns[:4]) == ["dataset", "split", "query_type", "n"]
    assert table.set_index("query_type").loc["all", "ciou_trained"] == pytest.approx(0.6)
    assert ciou_ratio(trained, untrained, dataset="refcoco", split="val") == pytest.approx(6.0)
    with pytest.raises(ValueError, match="fprefcoco"):
        ciou_ratio(trained, untrained, dataset="fprefcoco", split="val")


def test_grounding_goal_needs_both_margin_and_see():
    baseline = per_query_type(_rows([("refcoco", "shape", 3, 10, True, True), ("fprefcoco", "fp", 0, 5, False, True)]))
    good = per_query_type(_rows([("refcoco", "shape", 5, 10, True, True), ("fprefcoco", "fp", 0, 0, False, False)]))
    blind = per_query_type(_rows([("refcoco", "shape", 5, 10, True, True), ("fprefcoco", "fp", 0, 5, False, True)]))
    kwargs = dict(dataset="refcoco", see_dataset="fprefcoco", see_goal=0.85)
    assert grounding_reached(good, baseline, margin=0.10, **kwargs)
    assert not grounding_reached(good, baseline, margin=0.30, **kwargs)  # cIoU 0.5 vs 0.3: margin 0.2 only
    assert not grounding_reached(blind, baseline, margin=0.10, **kwargs)  # See 0 on the false premise


def test_summary_columns_and_curve():
    table = per_query_type(_rows([("refcoco", "shape", 2, 4, True, True)]))
    assert [c for c in with_summary_columns(table, run_id="b", checkpoint="c").columns if c != "query_type"] == \
        SUMMARY_SCHEMA.names
    curve = learning_curve([(10, 30.0, _rows([("refcoco", "shape", 1, 4, True, True)])),
                            (20, 60.0, _rows([("refcoco", "shape", 3, 4, True, True)]))])
    assert curve[curve["query_type"] == "all"]["ciou"].tolist() == pytest.approx([0.25, 0.75])
    text = format_curve(curve, dataset="refcoco")
    assert "75.0" in text and "train_min" in text


def test_false_premises_by_edit_is_the_refusal_rate_per_rewritten_element():
    rows = _rows([("fprefcoco", "false_premise", 0, 0, False, False), ("fprefcoco", "false_premise", 0, 3, False, True),
                  ("fprefcoco", "false_premise", 0, 0, False, False), ("fprefcoco", "colour", 2, 4, True, True),
                  ("fprefcoco", "false_premise", 0, 0, False, False), ("refcoco", "colour", 1, 4, True, True)])
    rows["edit"] = ["attribute", "attribute", "object", "", "", ""]
    rows["generated_text"] = ["There is no red square.", "It is the red square [SEG].", "I found a circle [SEG].",
                              "It is [SEG].", "", "It is [SEG]."]  # the object edit: [SEG] said, its mask empty
    rows.loc[4, "error"] = "sample k: cannot decode"  # error rows never count
    table = false_premises_by_edit(rows).set_index("edit")
    assert list(table.index) == ["all", "attribute", "object"]  # true premises and teacher-forced rows excluded
    assert table.loc["attribute", "see"] == pytest.approx(0.5) and table.loc["object", "see"] == 1.0
    assert table.loc["all", "n"] == 3 and table.loc["all", "see"] == pytest.approx(2 / 3)
    assert table["said_no_seg"].to_dict() == {"all": pytest.approx(1 / 3), "attribute": 0.5, "object": 0.0}
    text = format_side_by_side(table.reset_index()[[*BY_EDIT, "n", "see"]], keys=BY_EDIT)
    assert "attribute" in text and "50.0" in text


def test_false_premises_without_a_recorded_edit_are_unknown():
    rows = _rows([("fprefcoco", "false_premise", 0, 0, False, False)])
    assert list(false_premises_by_edit(rows)["edit"]) == ["all", "unknown"]


def test_language_stages_keep_each_stage_last_evaluation():
    caption = pd.DataFrame({"step": [500, 250], "seconds": [120.0, 60.0], "caption_colour": [0.9, 0.4],
                            "caption_shape": [0.8, 0.3]})
    pointing = pd.DataFrame({"step": [250], "seconds": [30.0], "point_auc": [0.761], "point_hit": [0.7],
                             "answer_see": [0.93]})
    table = language_stages({"stage-1": caption, "stage-2": pointing})
    assert table["stage"].tolist() == ["stage-1", "stage-2"] and table["step"].tolist() == [500, 250]
    assert table["minutes"].tolist() == [2.0, 0.5]
    assert table.loc[0, "caption_colour"] == 0.9 and pd.isna(table.loc[0, "point_auc"])
    assert table.loc[1, "point_auc"] == 0.761 and pd.isna(table.loc[1, "acc"])
    text = format_language_stages(table)
    assert "0.76" in text and "90.0" in text and "93.0" in text and "0.761" not in text
    assert text.splitlines()[2].split()[:4] == ["stage-2", "250", "0.5", "-"]


def test_language_stages_show_the_kept_evaluation_with_the_whole_stage_minutes():
    answers = pd.DataFrame({"step": [250, 500, 750], "seconds": [60.0, 120.0, 180.0], "answer_see": [0.7, 0.84, 0.72],
                            "kept": [False, True, False]})
    row = language_stages({"stage-5": answers}).iloc[0]
    assert row["step"] == 500 and row["answer_see"] == 0.84 and row["minutes"] == 3.0


def test_language_stages_count_the_minutes_of_every_attempt_of_a_restarted_stage():
    # attempt 0 stalled at step 750 and was restarted; attempt 1 met its target at step 500, after attempt 0's rows
    presence = pd.DataFrame({"step": [250, 500, 750, 250, 500], "seconds": [30.0, 60.0, 90.0, 120.0, 150.0],
                             "acc": [0.6, 0.6, 0.61, 0.8, 0.95], "attempt": [0, 0, 0, 1, 1],
                             "kept": [False, False, False, False, True]})
    row = language_stages({"stage-3": presence}).iloc[0]
    assert row["step"] == 500 and row["acc"] == 0.95 and row["minutes"] == 2.5


def test_language_stages_refuse_a_stage_without_evaluations():
    with pytest.raises(ValueError, match="'stage-3'.*re-run that stage"):
        language_stages({"stage-3": pd.DataFrame({"step": [], "seconds": []})})
