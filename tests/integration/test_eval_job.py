"""jobs.evaluate end to end on a real local Ray cluster with the tiny model and real tar shards.

One module-level evaluation with 1 worker from an exported checkpoint, and its reproduction with
`--config <out>/config.yaml num_workers=2`; the other tests reuse both outputs.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from jobs import evaluate as evaluate_job
from jobs import results as results_job
from jobs import visualize as visualize_job
from pipelines.results import compare, load
from schemas.sample import encode
from tests.fixtures.evaluate import make_eval_sample, write_eval_shard

TIMING_COLUMNS = ["latency_ms"]


@pytest.fixture(scope="module")
def export_dir(tiny_export_dir) -> str:
    return tiny_export_dir


@pytest.fixture(scope="module")
def runs(local_ray, eval_data, export_dir, tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("eval_runs")
    one, two = str(root / "one"), str(root / "two")
    report = evaluate_job.main([
        f"checkpoint={export_dir}", "model.preset=tiny", f"data=[{eval_data}]", f"out={one}", "num_workers=1",
        "max_new_tokens=4",
    ])
    assert report.num_reused == 0 and report.num_shards == 4
    evaluate_job.main(["--config", f"{one}/config.yaml", f"out={two}", "num_workers=2"])
    return {"one": one, "two": two, "root": str(root), "data": str(eval_data)}


def test_one_and_two_workers_give_identical_tables(runs):
    summary_1, queries_1 = load(runs["one"])
    summary_2, queries_2 = load(runs["two"])
    assert len(queries_1) == 16  # every query of the 4 shards exactly once
    assert not queries_1.duplicated(["dataset", "split", "sample_key", "query_id"]).any()
    assert set(queries_1["mode"]) == {"teacher_forced", "generate"}
    pd.testing.assert_frame_equal(queries_1.drop(columns=TIMING_COLUMNS), queries_2.drop(columns=TIMING_COLUMNS))
    pd.testing.assert_frame_equal(summary_1, summary_2)
    deltas = compare(runs["one"], runs["two"])
    assert np.nanmax(np.abs(deltas[[c for c in deltas.columns if c.endswith("_delta")]].to_numpy(float))) == 0.0


def test_summary_equals_plain_pandas_recomputation(runs):
    summary, queries = load(runs["one"])
    ok = queries[queries["error"] == ""]
    groups = [(k, g) for k, g in ok.groupby(["dataset", "split", "subset"])]
    groups += [((d, s, "all"), g) for (d, s), g in ok[ok["subset"] != "all"].groupby(["dataset", "split"])]
    assert len(groups) == len(summary)
    indexed = summary.set_index(["dataset", "split", "subset"])
    for key, g in groups:
        row = indexed.loc[key]
        gen = g[g["mode"] == "generate"]
        assert row["n"] == len(g)
        assert row["giou"] == pytest.approx(g["iou"].mean())
        assert row["ciou"] == pytest.approx(g["intersection"].sum() / g["union"].sum())
        if len(gen):
            assert row["see"] == pytest.approx((gen["pred_present"] == gen["gt_present"]).mean())
            assert row["segment"] == pytest.approx(gen["intersection"].sum() / gen["union"].sum())
        else:
            assert np.isnan(row["see"]) and np.isnan(row["segment"])
    reason = indexed.loc[("reasonseg", "val")]
    assert sorted(reason.index) == ["all", "long", "short"]


def test_rows_carry_masks_maps_and_points(runs):
    _, queries = load(runs["one"])
    teacher = queries[queries["mode"] == "teacher_forced"]
    assert (teacher["similarity"].map(len) > 0).all()  # one [SEG] per teacher-forced query
    counts = teacher["num_pos_points"] + teacher["num_neg_points"] + teacher["num_pad_points"]
    assert (counts == teacher["point_labels"].map(len)).all()
    assert (teacher["points_xy"].map(len) == 2 * teacher["point_labels"].map(len)).all()
    assert queries["pred_mask_rle"].str.contains('"counts"').all()
    assert (queries["latency_ms"] > 0).all()


def test_killed_run_resumes_scoring_only_missing_shards(runs):
    out = str(pathlib.Path(runs["root"]) / "resumed")
    shutil.copytree(runs["one"], out)
    parts = sorted((pathlib.Path(out) / "parts").glob("part-*.parquet"))
    assert len(parts) == 4
    parts[2].unlink()  # the shard whose worker was killed
    shutil.rmtree(pathlib.Path(out) / "queries")
    (pathlib.Path(out) / "summary.parquet").unlink()
    report = evaluate_job.main(["--config", f"{runs['one']}/config.yaml", f"out={out}", "num_workers=2"])
    assert report.num_reused == 3
    assert [s["index"] for s in report.shard_stats] == [2]
    assert report.num_scored_queries == 4
    _, resumed = load(out)
    _, original = load(runs["one"])
    pd.testing.assert_frame_equal(resumed.drop(columns=TIMING_COLUMNS), original.drop(columns=TIMING_COLUMNS))


def test_results_cli_prints_summary_and_deltas(runs, capsys):
    results_job.main([runs["one"]])
    text = capsys.readouterr().out
    assert "refcoco" in text and "giou" in text and "reasonseg" in text
    results_job.main([runs["one"], runs["two"]])
    text = capsys.readouterr().out
    assert "delta" in text and "+0.00" in text


def test_visualize_writes_panels(runs, tmp_path):
    dest = tmp_path / "viz"
    written = visualize_job.main([runs["one"], "dataset=refcoco", "limit=3", "worst=true", f"dest={dest}"])
    assert len(written) == 3
    pngs = sorted(dest.glob("*.png"))
    assert len(pngs) == 3 and all(p.name.startswith("refcoco-val-") for p in pngs)
    with Image.open(pngs[0]) as img:
        pixels = np.asarray(img.convert("RGB"))
    assert img.width > 4 * img.height // 2  # four tiles side by side
    assert pixels.std() > 10  # not a blank canvas


def test_preset_mismatch_is_refused(local_ray, eval_data, export_dir, tmp_path):
    with pytest.raises(SystemExit, match="exported with model.preset='tiny'"):
        evaluate_job.main([f"checkpoint={export_dir}", "model.preset=read-7b", f"data=[{eval_data}]",
                           f"out={tmp_path / 'x'}"])


def test_checkpoint_that_is_no_export_is_refused(local_ray, eval_data, tmp_path):
    with pytest.raises(SystemExit, match="not a READ export folder"):
        evaluate_job.main([f"checkpoint={tmp_path}", f"data=[{eval_data}]", f"out={tmp_path / 'x'}"])


def test_empty_data_selection_is_refused(local_ray, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="holds no .tar shards"):
        evaluate_job.main([f"data=[{tmp_path / 'empty'}]", f"out={tmp_path / 'x'}"])


def test_unknown_schema_version_is_refused(local_ray, tmp_path):
    raw = encode(make_eval_sample(0, dataset="refcoco"))
    meta = json.loads(raw["json"])
    meta["schema_version"] = 0
    raw["json"] = json.dumps(meta).encode()
    write_eval_shard(tmp_path / "old" / "shard-0.tar", [raw])
    with pytest.raises(SystemExit, match="schema_version 0"):
        evaluate_job.main([f"data=[{tmp_path / 'old'}]", f"out={tmp_path / 'x'}"])


@pytest.fixture(scope="module")
def read_runs(runs, export_dir) -> dict[str, str]:
    """The same data under READ's protocol, with 1 and 2 workers."""
    one, two = f"{runs['root']}/read-one", f"{runs['root']}/read-two"
    for out, workers in ((one, 1), (two, 2)):
        evaluate_job.main([f"checkpoint={export_dir}", "model.preset=tiny", f"data=[{runs['data']}]", f"out={out}",
                           f"num_workers={workers}", "max_new_tokens=4", "protocol=read"])
    return {"one": one, "two": two}


def test_read_protocol_rows_say_how_they_were_made(runs, read_runs):
    _, clean = load(runs["one"])
    summary_1, read_1 = load(read_runs["one"])
    summary_2, read_2 = load(read_runs["two"])
    pd.testing.assert_frame_equal(read_1.drop(columns=TIMING_COLUMNS), read_2.drop(columns=TIMING_COLUMNS))
    pd.testing.assert_frame_equal(summary_1, summary_2)
    assert set(clean["protocol"]) == {"clean"} and set(read_1["protocol"]) == {"read"}
    assert set(summary_1["protocol"]) == {"read"} and summary_1["checkpoint_hash"].str.startswith("model.").all()
    # ReasonSeg: READ scores text[0] only; the other datasets keep every query
    reason_clean, reason_read = (q[q["dataset"] == "reasonseg"] for q in (clean, read_1))
    assert len(reason_read) == reason_clean["sample_key"].nunique() < len(reason_clean)
    assert len(read_1[read_1["dataset"] != "reasonseg"]) == len(clean[clean["dataset"] != "reasonseg"])
    # the prompt column shows the difference: SESAME templates for RefCOCO, vicuna_v1 for generation
    refer = read_1[read_1["dataset"] == "refcoco"]
    assert refer["template_id"].str.startswith("read:short_question[").all()
    assert refer["prompt"].str.contains("curious human").all()
    gen = read_1[read_1["mode"] == "generate"]
    assert len(gen) and gen["prompt"].str.contains("curious user").all()
    assert not clean["prompt"].str.contains("curious user").any()
    merged = clean.merge(read_1, on=["dataset", "sample_key", "query_id"], suffixes=("_clean", "_read"))
    assert (merged["prompt_clean"] != merged["prompt_read"]).any()
    with pytest.raises(ValueError, match="protocol"):
        compare(runs["one"], read_runs["one"])
    assert len(compare(runs["one"], read_runs["one"], allow_mixed_protocols=True))
