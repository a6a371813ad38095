"""Images are decoded as READ decodes them, with cv2.imread, which applies the EXIF Orientation tag
(READ `dataloaders/base_dataset.py::load_and_preprocess_image`, `reason_seg_dataset.py`). A JPEG stored 60 wide x 40
high with Orientation=6 is 60 high x 40 wide: the sample's size and every mask follow that; an annotation that
records another size is quarantined naming both sizes, never shipped with a misaligned mask."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.conformance.expected import cv2_decode, expected_reasonseg, expected_refer, sizes_named
from tests.conformance.fixtures_real import build_exif_tree
from tests.conformance.jobrun import assert_conforms, run_job


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("exif_raw")
    return root, build_exif_tree(root)


@pytest.fixture(scope="module")
def reasonseg_job(local_ray, tree, tmp_path_factory):
    return run_job("reasonseg", tree[0], "val", tmp_path_factory.mktemp("exif_rs_out"), workers=1)


@pytest.fixture(scope="module")
def refcoco_job(local_ray, tree, tmp_path_factory):
    return run_job("refcoco", tree[0], "val", tmp_path_factory.mktemp("exif_rc_out"), workers=1)


def test_fixture_images_are_rotated_by_exif(tree):
    root, info = tree
    path = root / "reason_seg" / "ReasonSeg" / "val" / "exif_nosize.jpg"
    with Image.open(path) as img:
        assert img.size == (60, 40) and img.getexif().get(0x0112) == 6  # stored 60 wide x 40 high
    assert cv2_decode(path).shape[:2] == (60, 40)  # cv2.imread: 60 high x 40 wide


def test_reasonseg_matches_read(tree, reasonseg_job):
    assert_conforms(expected_reasonseg(tree[0], "val"), reasonseg_job, "reasonseg val (EXIF)")


@pytest.mark.parametrize("stem", ["exif_nosize", "exif_oriented_size"])
def test_reasonseg_sample_and_mask_follow_the_oriented_image(tree, reasonseg_job, stem):
    root, _ = tree
    want = {s.image_path.stem: s for s in expected_reasonseg(root, "val").samples}[stem]
    got = [s for s in reasonseg_job.samples if any(q.query_id == f"{stem}:0" for q in s.queries)]
    assert len(got) == 1, f"{stem}: expected one sample, got {len(got)}"
    s = got[0]
    assert (s.height, s.width) == (60, 40), f"{stem}: sample is {s.height}x{s.width}, cv2.imread gives 60x40"
    m = s.queries[0].mask
    assert m.shape == (60, 40) and np.array_equal(m, want.queries[f"{stem}:0"].mask)


def test_reasonseg_recorded_stored_size_is_quarantined(reasonseg_job):
    rows = [r for r in reasonseg_job.rejects.to_dict("records") if "exif_stored_size" in f"{r['key']} {r['source']}"]
    assert len(rows) == 1, f"exif_stored_size (JSON records 40x60, image decodes to 60x40) not quarantined: {rows}"
    import re

    reason = rows[0]["reason"]
    assert re.search(sizes_named(60, 40), reason) and re.search(sizes_named(40, 60), reason), reason
    assert rows[0]["num_queries"] == 1
    assert not any("exif_stored_size" in q.query_id for s in reasonseg_job.samples for q in s.queries)


def test_refer_matches_read(tree, refcoco_job):
    assert_conforms(expected_refer(tree[0], "refcoco", "val", "refs(unc_exclude_unified).p"), refcoco_job,
                    "refcoco val (EXIF)")


def test_refer_recorded_oriented_size_is_kept(refcoco_job):
    got = {q.query_id: (s, q) for s in refcoco_job.samples for q in s.queries}
    assert {"60:80", "60:81"} <= set(got), "image 501 (instances.json records the oriented 60x40) must be kept"
    s, q = got["60:80"]
    assert (s.height, s.width) == (60, 40) and q.mask.shape == (60, 40)


def test_refer_recorded_stored_size_is_quarantined(refcoco_job):
    import re

    rows = [r for r in refcoco_job.rejects.to_dict("records") if "502" in f"{r['key']} {r['source']}"]
    assert len(rows) == 1, f"image 502 (instances.json records 40x60, decodes to 60x40) not quarantined: {rows}"
    reason = rows[0]["reason"]
    assert re.search(sizes_named(60, 40), reason) and re.search(sizes_named(40, 60), reason), reason
    assert rows[0]["num_queries"] == 2
    assert not any(q.query_id.startswith("61:") for s in refcoco_job.samples for q in s.queries)
