"""Result parts, commit, shard listing/reading and the segment-everything baseline (no model needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipelines.evaluate import tables
from pipelines.evaluate.baseline import baseline_for_shards, baseline_queries, baseline_summary, union_of_objects
from pipelines.evaluate.config import EvaluateConfig
from pipelines.evaluate.rows import RunInfo, query_row
from pipelines.evaluate.shards import BadSample, check_schema_version, list_shards, read_shard
from schemas.sample import encode
from tests.fixtures.evaluate import make_eval_sample, write_eval_shard

RUN = RunInfo(run_id="r", checkpoint="c")


def _rows(sample, shard="s.tar"):
    pred = np.zeros((sample.height, sample.width), bool)
    return [query_row(run=RUN, sample=sample, shard=shard, query=q, mode="teacher_forced", pred_HW=pred)
            for q in sample.queries]


def test_parts_are_keyed_by_shard_not_worker_and_commit_sorts(tmp_path):
    out = str(tmp_path / "out")
    a, b = make_eval_sample(1, dataset="refcoco"), make_eval_sample(0, dataset="refcoco")
    tables.write_part(out, 1, 0, "x.tar", _rows(a, "x.tar"))
    tables.write_part(out, 0, 1, "y.tar", _rows(b, "y.tar"))
    assert set(tables.finished_parts(out)) == {tables.shard_id(0, "x.tar"), tables.shard_id(1, "y.tar")}
    summary = tables.commit(out, ["x.tar", "y.tar"], config_yaml="a: 1\n", run_id="r", checkpoint="c")
    queries = tables.read_queries(f"{out}/queries")
    assert list(queries["sample_key"]) == sorted(queries["sample_key"])  # committed order is the sort order
    assert summary.loc[0, "n"] == 4 and summary.loc[0, "giou"] == 0.0
    assert (tmp_path / "out" / "queries" / "dataset=refcoco" / "split=val").is_dir()
    assert (tmp_path / "out" / "config.yaml").read_text() == "a: 1\n"


def test_commit_refuses_missing_parts_and_empty_selections(tmp_path):
    out = str(tmp_path / "out")
    tables.write_part(out, 0, 0, "x.tar", [])
    with pytest.raises(ValueError, match="not scored yet"):
        tables.commit(out, ["x.tar", "y.tar"], config_yaml="", run_id="r", checkpoint="c")
    with pytest.raises(ValueError, match="empty data selection"):
        tables.commit(out, ["x.tar"], config_yaml="", run_id="r", checkpoint="c")


def test_parts_of_other_settings_are_not_mixed(tmp_path):
    cfg = EvaluateConfig(data=["d"], out=str(tmp_path))
    tables.prepare_parts(str(tmp_path), cfg.fingerprint(["a.tar"]))
    tables.prepare_parts(str(tmp_path), cfg.fingerprint(["a.tar"]))  # same settings: fine
    other = EvaluateConfig(data=["d"], out=str(tmp_path), max_new_tokens=7)
    with pytest.raises(ValueError, match="max_new_tokens"):
        tables.prepare_parts(str(tmp_path), other.fingerprint(["a.tar"]))
    assert cfg.resolved_run_id(["a.tar"]) == EvaluateConfig(data=["d"], out="elsewhere", num_workers=4).resolved_run_id(
        ["a.tar"])


def test_parts_of_an_older_query_table_layout_are_not_reused(tmp_path):
    """An out folder scored before the queries table gained a column names the version, not a column mismatch."""
    cfg = EvaluateConfig(data=["d"], out=str(tmp_path))
    old = cfg.fingerprint(["a.tar"])
    del old["query_table_version"]  # run.json as written before tables carried their own version
    tables.prepare_parts(str(tmp_path), old)
    with pytest.raises(ValueError, match="query_table_version.*new out="):
        tables.prepare_parts(str(tmp_path), cfg.fingerprint(["a.tar"]))


def test_committed_tables_of_an_older_layout_name_the_fix(tmp_path):
    import pyarrow.parquet as pq
    out = str(tmp_path / "out")
    tables.write_part(out, 0, 0, "x.tar", _rows(make_eval_sample(0, dataset="refcoco"), "x.tar"))
    tables.commit(out, ["x.tar"], config_yaml="", run_id="r", checkpoint="c")
    assert len(tables.read_queries(str(tmp_path / "out" / "queries"))) == 2
    part = next((tmp_path / "out" / "queries").rglob("*.parquet"))
    table = pq.read_table(part)
    pq.write_table(table.replace_schema_metadata({b"schema_version": b"1"}), part)
    with pytest.raises(ValueError, match=r"queries table .*schema_version 1 is not the supported 3; .*re-run "
                                         r"jobs.evaluate into a new out="):
        tables.read_queries(str(tmp_path / "out" / "queries"))


def test_mode_per_dataset():
    cfg = EvaluateConfig(data=["d"], out="o")
    assert [cfg.mode_of(d) for d in ("refcoco", "fprefcoco+", "R-refcoco", "reasonseg")] == [
        "teacher_forced", "generate", "generate", "teacher_forced"]
    assert EvaluateConfig(data=["d"], out="o", mode="generate").mode_of("refcoco") == "generate"
    with pytest.raises(ValueError, match="mode"):
        EvaluateConfig(data=["d"], out="o", mode="sampling")


def test_list_shards_is_sorted_and_refuses_empty(tmp_path):
    write_eval_shard(tmp_path / "d" / "b" / "shard-1.tar", [make_eval_sample(0, dataset="refcoco")])
    write_eval_shard(tmp_path / "d" / "a" / "shard-0.tar", [make_eval_sample(1, dataset="refcoco")])
    urls = list_shards([str(tmp_path / "d")])
    assert [u.rsplit("/", 2)[-2] for u in urls] == ["a", "b"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no .tar shards"):
        list_shards([str(tmp_path / "empty")])
    with pytest.raises(ValueError, match="holds no .tar shards"):
        list_shards([str(tmp_path / "missing")])


def test_unknown_schema_version_is_refused(tmp_path):
    raw = encode(make_eval_sample(0, dataset="refcoco"))
    meta = json.loads(raw["json"])
    meta["schema_version"] = 99
    raw["json"] = json.dumps(meta).encode()
    url = write_eval_shard(tmp_path / "v99.tar", [raw])
    with pytest.raises(ValueError, match="schema_version 99"):
        check_schema_version(url)
    with pytest.raises(ValueError, match="re-run jobs.preprocess"):
        list(read_shard(url))


def test_undecodable_sample_becomes_bad_sample(tmp_path):
    good = make_eval_sample(0, dataset="refcoco")
    broken = {"__key__": "broken-1", "image": b"xx", "json": b"{not json"}
    url = write_eval_shard(tmp_path / "s.tar", [good, broken])
    items = list(read_shard(url))
    assert [type(i).__name__ for i in items] == ["ShardSample", "BadSample"]
    assert items[1].key == "broken-1" and "cannot decode" in items[1].error


def test_segment_everything_baseline():
    fp = make_eval_sample(0, dataset="fprefcoco")
    ref = make_eval_sample(1, dataset="refcoco")
    bad = BadSample(key="k", dataset="refcoco", split="val", error="boom")
    cfg = EvaluateConfig(data=["d"], out="o")
    queries = baseline_queries([(fp, "a.tar"), (ref, "b.tar"), (bad, "b.tar")], mode_of=cfg.mode_of)
    assert len(queries) == 5 and (queries["error"] != "").sum() == 1
    union = union_of_objects(ref)
    for q in ref.queries:  # IoU of the union against each object, by hand
        target = q.mask == 1
        valid = q.mask != 255
        inter = (union & target).sum()
        expected = inter / ((union & valid).sum() + target.sum() - inter)
        got = queries[(queries["query_id"] == q.query_id) & (queries["dataset"] == "refcoco")]["iou"].item()
        assert got == pytest.approx(expected)
    fp_rows = queries[queries["dataset"] == "fprefcoco"]
    assert fp_rows["pred_present"].all()  # the baseline never says "not there"
    by_type = baseline_summary(queries).set_index("query_type")
    assert by_type.loc["false_premise", "see"] == 0.0 and by_type.loc["false_premise", "giou"] == 0.0
    assert by_type.loc["colour", "see"] == 1.0


def test_baseline_for_shards_covers_every_query(tmp_path):
    write_eval_shard(tmp_path / "d" / "fp.tar", [make_eval_sample(i, dataset="fprefcoco") for i in range(3)])
    queries, summary = baseline_for_shards([str(tmp_path / "d")])
    assert len(queries) == 6 and set(queries["mode"]) == {"generate"}
    assert summary["n"].sum() == 6
    assert set(summary["query_type"]) == {"colour", "false_premise"}


def test_partitions_round_trip_several_datasets_and_escaped_split_names(tmp_path):
    out = str(tmp_path / "out")
    samples = [make_eval_sample(0, dataset="refcoco"), make_eval_sample(1, dataset="refcoco+"),
               make_eval_sample(2, dataset="refcoco", split="test A/B")]  # needs escaping in a hive path
    rows = [r for i, s in enumerate(samples) for r in _rows(s, f"{i}.tar")]
    for i, s in enumerate(samples):
        tables.write_part(out, 0, i, f"{i}.tar", _rows(s, f"{i}.tar"))
    tables.commit(out, [f"{i}.tar" for i in range(3)], config_yaml="", run_id="r", checkpoint="c")
    queries = tables.read_queries(f"{out}/queries")
    assert len(queries) == len(rows)
    assert sorted(set(zip(queries["dataset"], queries["split"]))) == [
        ("refcoco", "test A/B"), ("refcoco", "val"), ("refcoco+", "val")]
    assert list(zip(queries["dataset"], queries["split"], queries["query_id"])) == sorted(
        (r["dataset"], r["split"], r["query_id"]) for r in rows)


def test_partition_runs_are_contiguous_slices():
    import pyarrow as pa
    table = pa.table({"dataset": ["a", "a", "b", "b", "b"], "split": ["x", "y", "y", "y", "z"]})
    assert tables.partition_runs(table) == [("a", "x", 0, 1), ("a", "y", 1, 1), ("b", "y", 2, 2), ("b", "z", 4, 1)]
    assert tables.partition_runs(table.slice(0, 0)) == []


def test_a_part_of_another_schema_version_is_named(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    out = str(tmp_path / "out")
    uri = tables.write_part(out, 0, 0, "x.tar", _rows(make_eval_sample(0, dataset="refcoco"), "x.tar"))
    table = pq.read_table(uri)
    pq.write_table(table.replace_schema_metadata({b"schema_version": b"0"}), uri)
    with pytest.raises(ValueError, match=r"result part .*part-w000.*schema_version 0"):
        tables.commit(out, ["x.tar"], config_yaml="", run_id="r", checkpoint="c")
    assert isinstance(tables.read_parts([]), pa.Table)
