"""Every dataset jobs.preprocess accepts, on real-layout trees, through the job with num_workers=1 and 2: the same
shards byte for byte (manifest sha256) and exactly READ's queries and masks."""

from __future__ import annotations

import pytest

from tests.conformance.expected import (
    expected_ade20k,
    expected_llava,
    expected_reasonseg,
    expected_refer,
)
from tests.conformance.fixtures_real import REFER_LAYOUT, build_ade20k, build_llava, build_reasonseg, \
    build_refer_family
from tests.conformance.jobrun import assert_conforms, manifest_rows, run_job
from tests.conformance.test_semseg_readers_conformance import SEMSEG_COVERED

SPLITS = {"reasonseg": "val", **{name: "val" for name in REFER_LAYOUT}, "llava_vqa": "train", "ade20k": "train"}
"""The datasets this suite has real-layout fixtures for, and the split each is run on."""


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("all_raw")
    build_reasonseg(root, "val", shapes_per_image=24)
    refer = build_refer_family(root)
    build_ade20k(root)
    build_llava(root)
    return root, refer


def _expected(name, root, refer):
    split = SPLITS[name]
    if name == "reasonseg":
        return expected_reasonseg(root, split)
    if name == "llava_vqa":
        return expected_llava(root)
    if name == "ade20k":
        return expected_ade20k(root, "training")
    return expected_refer(root, name, split, refer.refs_read[name], refer.bad_ref_ids.get(name))


def test_every_accepted_dataset_has_a_conformance_case():
    from pipelines.sources import DATASETS

    covered = set(SPLITS) | set(SEMSEG_COVERED)
    missing = sorted(set(DATASETS) - covered)
    assert not missing, f"datasets jobs.preprocess accepts with no real-layout conformance fixture: {missing}"
    assert covered <= set(DATASETS)


@pytest.mark.parametrize("name", list(SPLITS))
def test_one_and_two_workers_same_shards_and_reads_output(local_ray, raw, tmp_path_factory, name):
    root, refer = raw
    safe = name.replace("+", "p")
    outs = {w: run_job(name, root, SPLITS[name], tmp_path_factory.mktemp(f"jw_{safe}_w{w}"), workers=w)
            for w in (1, 2)}
    want = _expected(name, root, refer)
    assert manifest_rows(outs[1]) == manifest_rows(outs[2]), f"{name}: manifests differ between 1 and 2 workers"
    assert outs[1].shard_bytes == outs[2].shard_bytes
    if len(want.samples) >= 3:
        assert len(outs[1].shard_bytes) >= 2, f"{name}: expected several shards (shard_max_samples=2)"
    key = ["key", "num_queries", "reason"]
    assert outs[1].rejects[key].values.tolist() == outs[2].rejects[key].values.tolist()
    assert_conforms(want, outs[2], f"{name} {SPLITS[name]} (2 workers)")
