"""jobs.augment end to end on the synthetic REFER data: goals, runtime contract, export round trip through
jobs.preprocess, worker-count independence and resume."""

from __future__ import annotations

import json
import pathlib

import pyarrow.parquet as pq
import pytest

from jobs import augment, preprocess
from jobs._config import load_config
from pipelines.augment.config import AugmentConfig
from pipelines.augment.lexicon import Lexicon
from pipelines.augment.text import single_replacement
from pipelines.synth.palette import COLOURS
from tests.fixtures.preprocess import read_out, tree_bytes

ARGS = ["dataset=refcoco", "split=train", "shard_max_samples=3", "seed=5"]


@pytest.fixture(scope="module")
def ray_run(synth_root, local_ray, tmp_path_factory) -> pathlib.Path:
    """One job run on the local Ray cluster with 2 workers and the REFER export."""
    out = tmp_path_factory.mktemp("augment") / "ray"
    assert augment.main([*ARGS, f"root={synth_root}", f"out={out}", "num_workers=2", "export_refer=true"]) == 0
    return out


def _instances(synth_root: pathlib.Path) -> dict:
    return json.loads((synth_root / "refer_seg" / "refcoco" / "instances.json").read_text())


def _image_categories(synth_root: pathlib.Path) -> dict[int, set[str]]:
    instances = _instances(synth_root)
    names = {c["id"]: c["name"] for c in instances["categories"]}
    out: dict[int, set[str]] = {}
    for ann in instances["annotations"]:
        out.setdefault(ann["image_id"], set()).add(names[ann["category_id"]])
    return out


def _image_colours(synth_root: pathlib.Path) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for ann in _instances(synth_root)["annotations"]:
        out.setdefault(ann["image_id"], set()).add(ann["colour"])
    return out


def test_goals_on_synthetic_refer(ray_run, synth_root):
    _, _, samples = read_out(ray_run)
    true = [q for s in samples for q in s.queries if q.exists]
    false = [q for s in samples for q in s.queries if not q.exists]
    assert len(true) >= 30
    covered = {q.query_id.rsplit(":", 1)[0] for q in false}
    assert len(covered) / len(true) >= 0.95
    assert {q.edit for q in false} == {"object", "attribute", "relation"}

    # Every object edit names a category absent from the image, checked against instances.json directly.
    present = _image_categories(synth_root)
    lexicon = Lexicon.build(sorted({c for cats in present.values() for c in cats}))
    object_edits = 0
    for s in samples:
        for q in s.queries:
            if q.edit != "object":
                continue
            rep = single_replacement(q.gt_sent, q.text)
            named = lexicon.category_of(rep.new)
            assert named is not None and named[0] not in present[s.extra["image_id"]], (q.text, q.gt_sent)
            object_edits += 1
    assert object_edits > 0

    # Every attribute edit names a colour of the synthetic palette that no object of the image has.
    colours = _image_colours(synth_root)
    attribute_edits = 0
    for s in samples:
        for q in s.queries:
            if q.edit == "attribute" and (new := single_replacement(q.gt_sent, q.text).new[0]) not in ("big", "small"):
                assert new in COLOURS and new not in colours[s.extra["image_id"]], (q.text, q.gt_sent)
                attribute_edits += 1
    assert attribute_edits > 0

    by_id = {q.query_id: q for q in true}
    for q in false:
        orig = by_id[q.query_id.rsplit(":", 1)[0]]
        assert q.query_id.endswith(":fp0") and q.mask is None and q.gt_sent == orig.text
        assert q.query_type == "false_premise" and q.ann_id == orig.ann_id


def test_tables_and_config(ray_run, synth_root):
    manifest, rejects, samples = read_out(ray_run)
    assert len(manifest) == 3 and int(manifest["samples"].sum()) == len(samples) == 8
    assert int(manifest["queries"].sum()) == sum(len(s.queries) for s in samples)
    assert set(rejects["reason"].str.split(":").str[0]) <= {"augment_shortfall"}

    summary = pq.read_table(ray_run / "summary.parquet").to_pandas()
    accepted = summary[summary.outcome == "accepted"].set_index("edit")["count"].to_dict()
    in_shards: dict[str, int] = {}
    for s in samples:
        for q in s.queries:
            if q.edit:
                in_shards[q.edit] = in_shards.get(q.edit, 0) + 1
    assert accepted == in_shards
    totals = summary[summary.edit == ""].set_index("outcome")["count"].to_dict()
    assert totals["true_queries"] == sum(q.exists for s in samples for q in s.queries)
    assert totals["shortfall"] == len(rejects)
    assert (summary[summary.outcome == "rejected"]["count"] > 0).all()

    cfg = load_config(AugmentConfig, ["--config", str(ray_run / "config.yaml")])
    assert (cfg.dataset, cfg.seed, cfg.shard_max_samples, cfg.export_refer) == ("refcoco", 5, 3, True)


def test_export_reads_back_through_preprocess(ray_run, tmp_path):
    export_root = ray_run / "refer"
    assert (export_root / "refer_seg" / "fprefcoco" / "refs(berkeley_exclude_unified).p").exists()
    assert preprocess.main(["dataset=fprefcoco", f"root={export_root}", "split=train", f"out={tmp_path}",
                            "num_workers=0"]) == 0
    _, rejects, back = read_out(tmp_path)
    _, _, ours = read_out(ray_run)
    assert len(rejects) == 0 and [s.key for s in back] == [s.key for s in ours]
    for a, b in zip(ours, back):
        assert a.image_bytes == b.image_bytes
        # Generated ids "<ref>:<sent>:fp0" get fresh sent ids in the export; everything else must survive.
        assert [(q.text, q.exists, q.edit, q.query_type, q.ann_id) for q in a.queries] == [
            (q.text, q.exists, q.edit, q.query_type, q.ann_id) for q in b.queries]
        assert [q.gt_sent for q in a.queries if not q.exists] == [q.gt_sent for q in b.queries if not q.exists]
        assert all(q.gt_sent == q.text for q in b.queries if q.exists)  # FP-RefCOCO: a true sentence's gt is itself
        for qa, qb in zip(a.queries, b.queries):
            assert (qa.mask is None) == (qb.mask is None)
            assert qa.mask is None or (qa.mask == qb.mask).all()


def test_same_output_whatever_the_worker_count_and_resume(ray_run, synth_root, tmp_path, capsys):
    out = tmp_path / "inline"
    assert augment.main([*ARGS, f"root={synth_root}", f"out={out}", "num_workers=0"]) == 0
    assert tree_bytes(out, "*.tar") == tree_bytes(ray_run, "*.tar")
    assert tree_bytes(out, "*.parquet") == tree_bytes(ray_run, "*.parquet")
    capsys.readouterr()
    assert augment.main([*ARGS, f"root={synth_root}", f"out={out}", "num_workers=0"]) == 0
    assert "3 already done" in capsys.readouterr().out
    assert tree_bytes(out, "*.tar") == tree_bytes(ray_run, "*.tar")

    # Another seed is another plan: nothing is reused and the content changes.
    assert augment.main([*ARGS[:-1], "seed=6", f"root={synth_root}", f"out={out}", "num_workers=0"]) == 0
    assert "0 already done" in capsys.readouterr().out
    assert tree_bytes(out, "*.tar") != tree_bytes(ray_run, "*.tar")


def test_bad_options_exit_with_the_key(synth_root, tmp_path):
    with pytest.raises(SystemExit, match="edits"):
        augment.main(["dataset=refcoco", f"root={synth_root}", "split=train", f"out={tmp_path}", "edits=[colour]"])
    with pytest.raises(SystemExit, match="lm_path"):
        augment.main(["dataset=refcoco", f"root={synth_root}", "split=train", f"out={tmp_path}", "rewriter=lm"])
    with pytest.raises(SystemExit, match="root"):
        augment.main(["dataset=nope", f"root={synth_root}", "split=train", f"out={tmp_path}"])


def test_lm_rewriter_job_plumbing(synth_root, tiny_lm_dir, tmp_path):
    out = tmp_path / "lm"
    assert augment.main(["dataset=refcoco", f"root={synth_root}", "split=testA", f"out={out}", "rewriter=lm",
                         f"lm_path={tiny_lm_dir}", "lm_max_new_tokens=4", "lm_num_tries=1", "edits=[object]",
                         "num_workers=0"]) == 0
    _, rejects, samples = read_out(out)
    summary = pq.read_table(out / "summary.parquet").to_pandas()
    true = sum(q.exists for s in samples for q in s.queries)
    made = sum(not q.exists for s in samples for q in s.queries)
    assert true > 0 and int(summary[summary.outcome == "true_queries"]["count"].iloc[0]) == true
    rejected = int(summary[summary.outcome == "rejected"]["count"].sum())
    assert rejected + made == true  # one answer per query: each either passed validation or was rejected
    assert len(rejects) == true - made


REALISTIC = pathlib.Path(__file__).parents[1] / "data" / "refcoco_style_expressions.json"


def test_realistic_expressions_through_the_job(tmp_path, capsys):
    """The hand-written RefCOCO-style set as a REFER tree: the goals from the shards and summary.parquet, the
    printed lines, and the same bytes for the same seed."""
    from pipelines.augment.expression_set import ExpressionSet

    root = ExpressionSet.load(REALISTIC).write_refer(tmp_path / "raw")
    args = ["dataset=refcoco", f"root={root}", "split=train", "num_workers=0", "seed=2"]
    assert augment.main([*args, f"out={tmp_path / 'a'}"]) == 0
    printed = capsys.readouterr().out
    assert "[augment] calibration on 42 images" in printed
    assert "[augment] coverage " in printed and "mix object" in printed and "(weight 33%)" in printed
    _, _, samples = read_out(tmp_path / "a")
    false = [q for s in samples for q in s.queries if not q.exists]
    true = [q for s in samples for q in s.queries if q.exists]
    assert len({q.query_id.rsplit(":", 1)[0] for q in false}) / len(true) >= 0.95
    mix = {e: sum(q.edit == e for q in false) / len(false) for e in ("object", "attribute", "relation")}
    assert min(mix.values()) >= 0.20, mix
    assert all(isinstance(q.extra["verified"], bool) for q in false)

    summary = pq.read_table(tmp_path / "a" / "summary.parquet").to_pandas()
    share = {(e, o): s for e, o, s in zip(summary.edit, summary.outcome, summary.share)}
    assert share[("", "covered")] >= 0.95 and share[("relation", "weight")] == pytest.approx(1 / 3)
    assert share[("relation", "accepted")] == pytest.approx(mix["relation"])
    assert share[("", "verified")] == pytest.approx(sum(q.extra["verified"] for q in false) / len(false))
    assert {"valid_share", "supported", "verified", "unverified"} <= set(summary.outcome)
    assert set(summary[summary.outcome == "rejected"].edit) <= {"object", "attribute", "relation"}

    assert augment.main([*args, f"out={tmp_path / 'b'}"]) == 0
    assert tree_bytes(tmp_path / "a", "*.tar") == tree_bytes(tmp_path / "b", "*.tar")
