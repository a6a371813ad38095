"""The REFER family through jobs.preprocess vs READ's reading (REFER `refer.py`, READ `refer_seg_dataset.py`,
`test_dataset.py`): refs file choice, Python 2 and numpy pickles, every segmentation form, existence, bad refs."""

from __future__ import annotations

import pickletools

import numpy as np
import pytest

from tests.conformance.expected import expected_refer, refer_mask, refs_file_read_by_read
from tests.conformance.fixtures_real import BAD_REF_IDS, CLEF_FORMS, COCO_FORMS, REFER_LAYOUT, build_refer_family, \
    build_unsafe_refer
from tests.conformance.jobrun import assert_conforms, compare_rejects, run_job

NAMES = tuple(REFER_LAYOUT)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return build_refer_family(tmp_path_factory.mktemp("refer_raw"))


@pytest.fixture(scope="module")
def jobs(local_ray, tree, tmp_path_factory):
    """(name, split) -> JobOutput, each job run once per module (num_workers=1)."""
    cache = {}

    def get(name, split="val"):
        if (name, split) not in cache:
            out = tmp_path_factory.mktemp(f"refer_out_{name.replace('+', 'p')}_{split}")
            cache[(name, split)] = run_job(name, tree.root, split, out, workers=1)
        return cache[(name, split)]

    return get


def _want(tree, name, split="val"):
    return expected_refer(tree.root, name, split, tree.refs_read[name], tree.bad_ref_ids.get(name))


def _queries(job):
    return {q.query_id: q for s in job.samples for q in s.queries}


def test_fixture_pickles_are_the_original_formats(tree):
    """REFER's originals are Python 2 cPickle files (protocol 0: STRING opcodes; protocol 2: SHORT_BINSTRING); a
    Python 3 re-save holds numpy scalars (numpy._core.multiarray.scalar)."""
    seen = {}
    for name, spec in REFER_LAYOUT.items():
        for split_by, how, _ in spec["files"]:
            data = (tree.root / "refer_seg" / name / f"refs({split_by}).p").read_bytes()
            ops = {op.name for op, _, _ in pickletools.genops(data)}
            seen.setdefault(how, set()).update(ops)
            args = {arg for _, arg, _ in pickletools.genops(data) if isinstance(arg, str)}
            if how == "py3-4-numpy":
                assert "scalar" in args and ops & {"STACK_GLOBAL", "GLOBAL"}
    assert {"STRING", "GET", "PUT"} <= seen["py2-0"] and "UNICODE" in seen["py2-0"]
    assert {"SHORT_BINSTRING", "BINGET", "BINPUT", "BINUNICODE", "INT"} <= seen["py2-2"]
    assert "PROTO" not in seen["py2-0"]


@pytest.mark.parametrize("name", NAMES)
def test_dataset_matches_read(tree, jobs, name):
    assert_conforms(_want(tree, name), jobs(name), f"{name} val")


@pytest.mark.parametrize("name", NAMES)
def test_refs_file_read_is_reads_choice_and_recorded(tree, jobs, name):
    folder = tree.root / "refer_seg" / name
    chosen = refs_file_read_by_read(folder, name)
    assert chosen == tree.refs_read[name]
    config = jobs(name).config_text
    assert chosen in config, f"config.yaml does not name {chosen}:\n{config}"
    for other in sorted(p.name for p in folder.glob("refs(*).p")):
        if other != chosen:
            assert other not in config, f"config.yaml names {other}, READ reads {chosen}"
    texts = [q.text for q in _queries(jobs(name)).values()]
    assert not any("(other refs file)" in t for t in texts), f"{name}: queries come from a refs file READ does not read"


def test_split_test_is_every_split_containing_test(tree, jobs):
    want = _want(tree, "refcoco", "test")
    import pickle

    refs = pickle.loads((tree.root / "refer_seg" / "refcoco" / "refs(unc_exclude_unified).p").read_bytes())
    assert {r["split"] for r in refs if "test" in r["split"]} == {"testA", "testB"}
    assert_conforms(want, jobs("refcoco", "test"), "refcoco test (= testA + testB)")


def _form_cases():
    return [("refcoco", f) for f in COCO_FORMS] + [("refclef", f) for f in CLEF_FORMS]


@pytest.mark.parametrize(("name", "form"), _form_cases())
def test_segmentation_form_decodes_like_pycocotools(tree, jobs, name, form):
    import json
    import pickle

    folder = tree.root / "refer_seg" / name
    anns = {a["id"]: a for a in json.loads((folder / "instances.json").read_text())["annotations"]}
    imgs = {i["id"]: i for i in json.loads((folder / "instances.json").read_text())["images"]}
    refs = pickle.loads((folder / tree.refs_read[name]).read_bytes())
    forms = tree.ann_forms[name]
    cases = [(r, s) for r in refs if r["split"] == "val" and forms.get(r["ann_id"]) == form for s in r["sentences"]]
    assert cases, f"fixture has no val ref with a {form} segmentation"
    got = _queries(jobs(name))
    for ref, sent in cases:
        qid = f"{ref['ref_id']}:{sent['sent_id']}"
        assert qid in got, f"{qid} ({form}) missing from the shards"
        img = imgs[ref["image_id"]]
        want = refer_mask(anns[ref["ann_id"]]["segmentation"], img["height"], img["width"])
        m = got[qid].mask
        assert m is not None and m.dtype == np.uint8 and np.array_equal(m, want), \
            f"{qid} ({form}): mask differs from pycocotools decode (sum > 0)"
        if form == "empty":
            assert not m.any()
        if form == "poly_overlap":
            assert m.max() == 1, "overlapping parts: the union is 1 (READ's np.sum would give 2)"


def test_existence_and_gt_sent(tree, jobs):
    import pickle

    for name, key in (("R-refcoco", "exist"), ("fprefcoco", "is_false_premise")):
        refs = pickle.loads((tree.root / "refer_seg" / name / tree.refs_read[name]).read_bytes())
        got = _queries(jobs(name))
        kinds = set()
        for r in (r for r in refs if r["split"] == "val"):
            for s in r["sentences"]:
                q = got.get(f"{r['ref_id']}:{s['sent_id']}")
                assert q is not None
                if "is_false_premise" in s:
                    want, kind = not s["is_false_premise"], ("fp", bool(s["is_false_premise"]), "exist" in s)
                elif "exist" in s:
                    want, kind = bool(s["exist"]), ("exist", bool(s["exist"]))
                else:
                    want, kind = True, ("none",)
                kinds.add(kind)
                assert q.exists == want, f"{name} {q.query_id}: exists {q.exists}, READ gives {want} ({s})"
                assert (q.mask is None) == (not want)
                assert q.gt_sent == s.get("gt_sent"), f"{name} {q.query_id}: gt_sent {q.gt_sent!r}"
        if key == "exist":
            assert {("exist", True), ("exist", False), ("none",)} <= kinds
        else:
            assert {("fp", True, False), ("fp", False, False), ("fp", False, True)} <= kinds


def test_malformed_refs_quarantined_naming_ref_id(tree, jobs):
    want = _want(tree, "R-refcoco+")
    assert {int(e.what.split()[-1]) for e in want.rejects} == set(BAD_REF_IDS)
    got = jobs("R-refcoco+")
    assert compare_rejects(want, got) == []
    kept, rejected = int(got.manifest["queries"].sum()), int(got.rejects["num_queries"].sum())
    assert kept + rejected == want.input_queries


def test_unsafe_pickle_refused_nothing_executed(local_ray, tmp_path_factory):
    root = tmp_path_factory.mktemp("unsafe_raw")
    marker = root / "PWNED"
    build_unsafe_refer(root, marker)
    try:
        got = run_job("refcoco", root, "val", tmp_path_factory.mktemp("unsafe_out"), workers=1)
    except SystemExit as err:
        raise AssertionError(f"the job stopped instead of quarantining the refs file: {err}") from err
    finally:
        assert not marker.exists(), "unpickling the refs file ran os.system"
    reasons = list(got.rejects["reason"])
    assert any("unsafe" in r.lower() for r in reasons), f"no reject says 'unsafe': {reasons}"
    assert got.samples == []
