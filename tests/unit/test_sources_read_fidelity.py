"""Readers read what READ reads: OpenCV ReasonSeg masks, cp1252 JSON, EXIF orientation, RefCLEF RLE lists, REFER's
split rule, numpy scalars in refs pickles, malformed refs quarantined. Expected values come from OpenCV, pycocotools
and PIL directly (READ's `get_mask_from_json`, REFER's `getMask` / `getRefIds`), not from the readers."""

from __future__ import annotations

import io
import json
import os
import pickle

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from pipelines.data.image import decode_rgb
from pipelines.sources import iter_samples, open_source, rasterise_shapes
from pipelines.sources.base import Reject, image_size, read_image
from pipelines.sources.reasonseg import read_labelme_json
from pipelines.sources.refer import decode_segmentation, select_split
from pipelines.sources.safe_pickle import UnsafePickleError, load_plain_pickle
from schemas.sample import ShardSample
from tests.conformance.expected import reasonseg_mask  # READ's get_mask_from_json, drawn with OpenCV


def test_reasonseg_masks_equal_reads_opencv_drawing_on_random_polygons():
    rng = np.random.default_rng(3)
    height, width = 61, 97
    for _ in range(60):
        shapes = []
        for k in range(int(rng.integers(1, 5))):
            n = int(rng.integers(1, 8))  # 1- and 2-point shapes are drawn too (a dot, a line)
            pts = rng.uniform([-5, -5], [width + 5, height + 5], size=(n, 2)).round(2).tolist()
            label = ["target", "ignore_this", "Flag", "person"][int(rng.integers(4))]
            shapes.append({"label": label, "points": pts})
        got = rasterise_shapes(shapes, height, width)
        assert np.array_equal(got, reasonseg_mask(shapes, height, width))


def test_two_point_shape_is_a_line_not_a_reject():
    mask = rasterise_shapes([{"label": "target", "points": [[2.7, 3.2], [20.9, 3.9]]}], 10, 30)
    assert mask[3, 2:21].tolist() == [1] * 19 and mask.sum() == 19


def test_reasonseg_json_falls_back_to_cp1252(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(json.dumps({"text": ["the caf\u00e9\u2019s sign"]}, ensure_ascii=False).encode("cp1252"))
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    assert read_labelme_json(str(path))["text"] == ["the caf\u00e9\u2019s sign"]
    path.write_bytes(b"{not json")
    with pytest.raises(ValueError, match="nor as cp1252"):
        read_labelme_json(str(path))


def _rotated_jpeg(path, upright_HW3, orientation=6):
    """Store `upright` rotated so that EXIF orientation 6 (rotate 90 CW on display) makes it upright again."""
    stored = np.rot90(upright_HW3, k=1)  # 90 CCW; orientation 6 turns it back clockwise
    img = Image.fromarray(np.ascontiguousarray(stored))
    exif = img.getexif()
    exif[0x0112] = orientation
    img.save(path, "JPEG", exif=exif, quality=95)


def test_exif_orientation_applied_as_cv2_imread(tmp_path):
    upright = np.zeros((40, 60, 3), dtype=np.uint8)
    upright[:10, :, 0] = 255  # a red band at the top of the upright image
    path = str(tmp_path / "r.jpg")
    _rotated_jpeg(path, upright)
    with Image.open(path) as raw:
        assert raw.size == (40, 60)  # stored 40 wide, 60 high
    want = cv2.imread(path)[:, :, ::-1]
    assert want.shape == (40, 60, 3)
    _, _, height, width = read_image(path)
    assert (height, width) == (40, 60) == image_size(path)
    assert np.array_equal(decode_rgb(open(path, "rb").read()), want)


def _refer_tree(root, refs, *, image_hw=(20, 30), recorded_hw=None, split_by="unc_exclude_unified"):
    folder = root / "refer_seg" / "refcoco"
    images = root / "refer_seg" / "images" / "mscoco" / "images" / "train2014"
    folder.mkdir(parents=True)
    images.mkdir(parents=True)
    Image.fromarray(np.full((*image_hw, 3), 90, np.uint8)).save(images / "COCO_1.jpg")
    h, w = recorded_hw or image_hw
    instances = {"images": [{"id": 1, "file_name": "COCO_1.jpg", "height": h, "width": w}],
                 "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25,
                                  "segmentation": [[2, 2, 10, 2, 10, 10, 2, 10]]}],
                 "categories": [{"id": 1, "name": "thing"}]}
    (folder / "instances.json").write_text(json.dumps(instances))
    (folder / f"refs({split_by}).p").write_bytes(pickle.dumps(refs, protocol=2))
    return folder


def _ref(ref_id, split, ann_id=7, sent_ids=(1,)):
    return {"ref_id": ref_id, "ann_id": ann_id, "image_id": 1, "category_id": 1, "split": split,
            "sentences": [{"sent_id": s, "sent": f"thing {s}", "raw": f"Thing {s}", "tokens": []} for s in sent_ids]}


def _collect(src):
    items = list(iter_samples(src))
    return ([i for i in items if isinstance(i, ShardSample)], [i for i in items if isinstance(i, Reject)])


def test_refer_test_split_is_testA_plus_testB_and_unknown_split_refused(tmp_path):
    refs = [_ref(1, "testA", sent_ids=(1,)), _ref(2, "testB", sent_ids=(2,)), _ref(3, "val", sent_ids=(3,))]
    assert [r["ref_id"] for r in select_split(refs, "test")] == [1, 2]
    _refer_tree(tmp_path, refs)
    samples, rejects = _collect(open_source("refcoco", str(tmp_path), "test"))
    assert rejects == [] and {q.query_id for q in samples[0].queries} == {"1:1", "2:2"}
    splits = r"its splits are \['testA', 'testB', 'val'\]"
    with pytest.raises(ValueError, match=r"split: .* no ref in split 'train'; " + splits):
        open_source("refcoco", str(tmp_path), "train")


def test_refs_file_defaults_to_exclude_unified_then_falls_back(tmp_path):
    folder = _refer_tree(tmp_path, [_ref(1, "val")], split_by="unc")
    assert open_source("refcoco", str(tmp_path), "val").refs_path().endswith("refs(unc).p")
    (folder / "refs(unc_exclude_unified).p").write_bytes(pickle.dumps([_ref(5, "val", sent_ids=(9,))], protocol=0))
    src = open_source("refcoco", str(tmp_path), "val")
    assert src.refs_path().endswith("refs(unc_exclude_unified).p")
    samples, _ = _collect(src)
    assert [q.query_id for q in samples[0].queries] == ["5:9"]


def test_malformed_refs_quarantined_with_their_ref_id_and_numpy_ids_read(tmp_path):
    refs = [_ref(1, "val", sent_ids=(1, 2)), _ref(2, "val", ann_id=[7, 8], sent_ids=(3,)),
            {"ref_id": 3, "split": "val", "sentences": [{"sent_id": 4, "sent": "x"}]},
            {**_ref(4, "val", sent_ids=(5,)), "image_id": "one"}, _ref(5, "train", ann_id=[1])]
    refs[0] = {**refs[0], "ref_id": np.int64(1), "ann_id": np.int64(7), "image_id": np.int32(1)}
    folder = _refer_tree(tmp_path, [])
    (folder / "refs(unc_exclude_unified).p").write_bytes(pickle.dumps(refs, protocol=4))  # Python 3 + numpy
    samples, rejects = _collect(open_source("refcoco", str(tmp_path), "val"))
    assert [q.query_id for q in samples[0].queries] == ["1:1", "1:2"]
    by_key = {r.key: r for r in rejects}
    assert set(by_key) == {"ref 2", "ref 3", "ref 4"}  # ref 5 is another split's
    assert "list ann_id [7, 8]" in by_key["ref 2"].reason and by_key["ref 2"].num_queries == 1
    assert "has no ['ann_id', 'image_id']" in by_key["ref 3"].reason
    assert "image_id must be an integer" in by_key["ref 4"].reason


def test_recorded_size_other_than_the_upright_image_is_quarantined(tmp_path):
    _refer_tree(tmp_path, [_ref(1, "val")], image_hw=(20, 30), recorded_hw=(30, 20))
    samples, rejects = _collect(open_source("refcoco", str(tmp_path), "val"))
    assert samples == [] and len(rejects) == 1
    assert rejects[0].reason.startswith("size_mismatch:") and "20x30" in rejects[0].reason
    assert "30x20" in rejects[0].reason and rejects[0].num_queries == 1


def test_refclef_list_of_rles_compressed_and_uncompressed():
    h, w = 12, 17
    a = np.zeros((h, w), np.uint8)
    a[2:6, 3:9] = 1
    b = np.zeros((h, w), np.uint8)
    b[5:11, 7:15] = 1
    rle_a = mask_utils.encode(np.asfortranarray(a))
    compressed = {"size": [h, w], "counts": rle_a["counts"].decode()}
    flat = b.flatten(order="F")  # uncompressed COCO RLE: run lengths over the column-major pixels, zeros first
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [2]])) != 0)
    uncompressed = {"size": [h, w], "counts": np.diff(np.concatenate([[0], changes])).tolist()}
    want = (mask_utils.decode([compressed | {"counts": compressed["counts"].encode()},
                               mask_utils.frPyObjects(uncompressed, h, w)]).sum(axis=2) > 0).astype(np.uint8)
    got = decode_segmentation([compressed, uncompressed], h, w)
    assert np.array_equal(got, want) and np.array_equal(got, a | b)
    assert np.array_equal(decode_segmentation(compressed, h, w), a)  # one RLE dict (COCO crowd)


def test_short_polygon_part_decodes_as_pycocotools_does():
    seg = [[2, 2, 10, 2, 10, 10, 2, 10], [1, 1, 5, 5]]
    want = (mask_utils.decode(mask_utils.frPyObjects(seg, 20, 30)).sum(axis=2) > 0).astype(np.uint8)
    assert np.array_equal(decode_segmentation(seg, 20, 30), want)


def test_pickle_admits_numpy_scalars_and_still_refuses_code(tmp_path):
    data = pickle.dumps([{"ref_id": np.int64(3), "score": np.float32(0.5), "sent": np.str_("a")}], protocol=4)
    assert load_plain_pickle(data) == [{"ref_id": 3, "score": 0.5, "sent": "a"}]
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with pytest.raises(UnsafePickleError, match="posix.system"):
        load_plain_pickle(pickle.dumps([{"ref_id": np.int64(1)}, Evil()]))
    assert not marker.exists()


def test_decode_rgb_png_and_grayscale_match_cv2(tmp_path):
    gray = (np.arange(35 * 21) % 251).astype(np.uint8).reshape(35, 21)
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, "PNG")
    path = tmp_path / "g.png"
    path.write_bytes(buf.getvalue())
    assert np.array_equal(decode_rgb(buf.getvalue()), cv2.imread(str(path))[:, :, ::-1])
