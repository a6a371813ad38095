"""ReasonSeg through jobs.preprocess vs READ's `get_mask_from_json` (READ `dataloaders/data_processing.py`,
`dataloaders/reason_seg_dataset.py`): every text entry a query sharing one mask drawn with OpenCV, byte-identical."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conformance.expected import expected_reasonseg, read_reasonseg_json, reasonseg_mask
from tests.conformance.fixtures_real import build_reasonseg
from tests.conformance.jobrun import assert_conforms, compare_rejects, run_job


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("reasonseg_raw")
    return root, build_reasonseg(root, "val")


@pytest.fixture(scope="module")
def want(tree):
    root, _ = tree
    return expected_reasonseg(root, "val")


@pytest.fixture(scope="module")
def job(local_ray, tree, tmp_path_factory):
    root, _ = tree
    return run_job("reasonseg", root, "val", tmp_path_factory.mktemp("reasonseg_out"), workers=1)


def _got_queries(job):
    return {q.query_id: (s, q) for s in job.samples for q in s.queries}


def _want_queries(want):
    return {qid: (e, q) for e in want.samples for qid, q in e.queries.items()}


def test_fixture_is_the_real_layout(tree, want):
    root, t = tree
    assert t.num_shapes >= 300
    jsons = sorted(t.folder.glob("*.json"))
    assert all(p.with_suffix(".jpg").exists() for p in jsons)
    cp1252 = [p for p in jsons if _is_cp1252_only(p.read_bytes())]
    assert len(cp1252) == 1, "one JSON must be cp1252 (invalid as UTF-8)"
    labels = {s["label"] for p in jsons if (a := read_reasonseg_json(p)) for s in a["shapes"]}
    assert {"flag", "Flag", "ignore", "IGNORE", "target", "flagpole"} <= labels
    assert len(want.samples) == 9 and want.input_queries > 20


def _is_cp1252_only(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return False
    except UnicodeDecodeError:
        try:
            json.loads(data.decode("cp1252"))
            return True
        except (UnicodeDecodeError, json.JSONDecodeError):
            return False


def test_everything_matches_read(want, job):
    assert_conforms(want, job, "reasonseg val")


def test_query_ids_are_stem_index_and_fp(want, job):
    got = sorted(_got_queries(job))
    assert got == sorted(_want_queries(want))


def test_masks_are_byte_identical_to_get_mask_from_json(want, job):
    got = _got_queries(job)
    bad = []
    for qid, (_, q) in _want_queries(want).items():
        if q.mask is None or qid not in got:
            continue
        m = got[qid][1].mask
        if m is None or m.dtype != np.uint8 or m.shape != q.mask.shape or not np.array_equal(m, q.mask):
            bad.append(qid if m is None or m.shape != q.mask.shape else f"{qid} ({int((m != q.mask).sum())} px)")
    assert not bad, f"masks differing from READ's get_mask_from_json: {bad}"


def test_cp1252_and_utf8_texts_are_read_as_read_reads_them(tree, job):
    root, t = tree
    got = _got_queries(job)
    for p in sorted(t.folder.glob("*.json")):
        anno = read_reasonseg_json(p)
        if anno is None or not any(ord(c) > 127 for c in "".join(anno["text"])):
            continue
        for i, text in enumerate(anno["text"]):
            qid = f"{p.stem}:{i}"
            assert qid in got, f"{qid} ({p.name}, non-ASCII text) missing from the shards"
            assert got[qid][1].text == text


def test_one_and_two_point_shapes_are_drawn(tree, job):
    root, t = tree
    anno = read_reasonseg_json(t.folder / "tiny_shapes.json")
    want = reasonseg_mask(anno["shapes"], 29, 41)
    assert want[6, 5] == 1, "READ draws a 1-point shape as a dot"
    got = _got_queries(job).get("tiny_shapes:0")
    assert got is not None, "the image with 1- and 2-point shapes must not be rejected"
    assert np.array_equal(got[1].mask, want)


def test_false_premise_qa_are_absent_queries(want, job):
    got = _got_queries(job)
    fps = {qid: q for qid, (_, q) in _want_queries(want).items() if ":fp" in qid}
    assert len(fps) == 2
    for qid, q in fps.items():
        assert qid in got, f"{qid} missing"
        g = got[qid][1]
        assert (g.text, g.exists, g.mask, g.is_sentence) == (q.text, False, None, q.is_sentence)


def test_bad_records_quarantined_and_queries_reconcile(want, job):
    assert compare_rejects(want, job) == []
    kept = int(job.manifest["queries"].sum())
    rejected = int(job.rejects["num_queries"].sum())
    assert kept + rejected == want.input_queries
    by_stem = {r["key"]: r for r in job.rejects.to_dict("records")}
    assert any("corrupt_image" in k and r["num_queries"] == 3 for k, r in by_stem.items())


def test_the_comparison_can_fail(want, job):
    """One flipped mask pixel, one renamed query, one dropped reject: each is reported."""
    import copy

    from tests.conformance.jobrun import compare

    broken = copy.deepcopy(job)
    q = next(q for s in broken.samples for q in s.queries if q.mask is not None)
    q.mask[0, 0] = {0: 1, 1: 255, 255: 0}[int(q.mask[0, 0])]
    broken.samples[-1].queries[0].query_id += "x"
    broken.rejects = broken.rejects[broken.rejects["num_queries"] == 0]  # drops the counted corrupt-image reject
    problems = compare(want, broken)
    assert any("mask differs in 1 of" in p for p in problems), problems
    assert any("query ids differ" in p for p in problems), problems
    assert any(p.startswith("expected one reject for undecodable image") for p in problems), problems
    assert any(p.startswith("query accounting") for p in problems), problems


def test_sample_size_and_bytes_follow_cv2(want, job):
    by_bytes = {s.image_bytes: s for s in job.samples}
    for e in want.samples:
        s = by_bytes.get(e.image_bytes)
        assert s is not None, f"{e.image_path.name}: no sample carries the file's bytes unchanged"
        assert (s.height, s.width) == (e.height, e.width)
