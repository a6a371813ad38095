"""Readers (pipelines/sources): synthetic trees in every format, the mask rules, and hand-made bad inputs."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from pipelines.sources import (
    DATASETS,
    LoadResult,
    Reject,
    decode_segmentation,
    iter_samples,
    open_source,
    rasterise_shapes,
    sentence_exists,
)
from pipelines.sources.llava import normalise_conversation
from schemas.sample import ShardSample, encode
from tests.fixtures.synth import SMALL_TREE


def _collect(src):
    samples, rejects = [], []
    for item in iter_samples(src):
        (samples if isinstance(item, ShardSample) else rejects).append(item)
    return samples, rejects


@pytest.mark.parametrize(
    ("dataset", "split", "summary_split"),
    [("refcoco", "val", "val"), ("fprefcoco", "val", "val"), ("R-refcoco", "train", "train"),
     ("refcocog", "test", "test"), ("refclef", "train", "train"), ("refclef", "testC", "testC"),
     ("reasonseg", "train", "train"), ("reasonseg", "val", "val"), ("llava_vqa", "train", "train"),
     ("ade20k", "train", "training"), ("cocostuff", "train", "train"), ("pascal_part", "train", "train"),
     ("paco_lvis", "train", "train"), ("mapillary", "train", "train")],
)
def test_reader_counts_match_synth_summary(synth_root, dataset, split, summary_split):
    counts = json.loads((synth_root / "synth_summary.json").read_text())[dataset][summary_split]
    samples, rejects = _collect(open_source(dataset, str(synth_root), split))
    assert rejects == []
    assert sum(s.num_queries for s in samples) == counts.get("queries", counts.get("classes"))
    assert 0 < len(samples) <= counts["images"]
    for s in samples:
        encode(s)  # validates the schema
        assert s.dataset == dataset and s.split == split
        ids = [q.query_id for q in s.queries]
        assert len(set(ids)) == len(ids)


def test_refer_sample_per_image_with_ref_sent_ids(synth_root):
    src = open_source("fprefcoco", str(synth_root), "val")
    samples, _ = _collect(src)
    refs = pickle.loads((synth_root / "refer_seg" / "fprefcoco" / "refs(berkeley_exclude_unified).p").read_bytes())
    want = {f"{r['ref_id']}:{s['sent_id']}": s for r in refs if r["split"] == "val" for s in r["sentences"]}
    got = {q.query_id: q for s in samples for q in s.queries}
    assert set(got) == set(want)
    for qid, q in got.items():
        assert q.exists == (not want[qid]["is_false_premise"])
        assert (q.mask is None) == (not q.exists)
        assert q.text == want[qid]["sent"]
        assert q.gt_sent == want[qid]["gt_sent"]
        assert q.query_type == want[qid]["type"]
    assert any(not q.exists for q in got.values()) and any(q.exists for q in got.values())


def test_refclef_masks_are_the_summed_rle_parts(synth_root):
    """RefCLEF (saiapr_tc-12 images, refs(unc).p, RLE-list segmentations): each query's mask is the sum of its
    annotation's RLE parts as pycocotools decodes them (REFER's getMask), on the image's own size."""
    inst = json.loads((synth_root / "refer_seg" / "refclef" / "instances.json").read_text())
    anns = {a["id"]: a for a in inst["annotations"]}
    images = {im["id"]: im for im in inst["images"]}
    samples, rejects = _collect(open_source("refclef", str(synth_root), "train"))
    assert rejects == [] and samples
    parts = set()
    for s in samples:
        im = images[s.extra["image_id"]]
        assert s.source.endswith("saiapr_tc-12/" + im["file_name"])
        assert (s.height, s.width) == (im["height"], im["width"])
        for q in s.queries:
            seg = anns[q.ann_id]["segmentation"]
            parts.add(len(seg))
            rles = [{"size": p["size"], "counts": p["counts"].encode()} for p in seg]
            np.testing.assert_array_equal(q.mask, mask_utils.decode(rles).sum(axis=2))
    assert parts == {1, 2}


def test_reasonseg_cp1252_text_and_exif_rotated_image(synth_root):
    """The cp1252 JSON's curly apostrophe arrives as U+2019 (a latin-1 read would give U+0092), and the EXIF-rotated
    image arrives with its upright size and a mask of that size."""
    samples, rejects = _collect(open_source("reasonseg", str(synth_root), "train"))
    assert rejects == []
    texts = [q.text for s in samples for q in s.queries]
    assert sum("\u2019" in t for t in texts) == 1 and not any("\x92" in t for t in texts)
    (rotated,) = [s for s in samples if s.key == "synth_train_00000"]
    w, h = SMALL_TREE["image_size"]
    assert (rotated.height, rotated.width) == (h, w)
    assert all(q.mask.shape == (h, w) for q in rotated.queries)
    record = json.loads((synth_root / "reason_seg/ReasonSeg/train/synth_train_00000.json").read_bytes())
    targets = [record["objects"][t] for t in record["target_indices"]]
    assert all((q.mask == 1).sum() == sum(t["area"] for t in targets) for q in rotated.queries)


def test_sentence_exists_rule():
    assert sentence_exists({}) is True
    assert sentence_exists({"exist": False}) is False
    assert sentence_exists({"exist": True, "is_false_premise": True}) is False
    assert sentence_exists({"exist": False, "is_false_premise": False}) is True


def test_decode_segmentation_polygons_union_clip_and_rle():
    h, w = 20, 30
    # two overlapping parts, one reaching outside the image (clipped, not rejected)
    seg = [[2, 2, 10, 2, 10, 10, 2, 10], [6, 6, 50, 6, 50, 40, 6, 40]]
    m = decode_segmentation(seg, h, w)
    assert m.dtype == np.uint8 and m.shape == (h, w) and set(np.unique(m)) == {0, 1}
    assert m[3, 3] == 1 and m[15, 25] == 1 and m[15, 3] == 0
    ref = np.zeros((h, w), np.uint8)
    ref[4:9, 5:20] = 1
    rle = mask_utils.encode(np.asfortranarray(ref))
    assert np.array_equal(decode_segmentation({"size": [h, w], "counts": rle["counts"].decode()}, h, w), ref)
    uncompressed = {"size": [h, w], "counts": [0, h * w]}  # 0 zeros then all ones (column-major counts)
    assert decode_segmentation(uncompressed, h, w).all()
    assert not decode_segmentation([], h, w).any()
    with pytest.raises(ValueError, match="bad_polygon"):
        decode_segmentation([[1, 1, 5, 5]], h, w)  # 2 points (pycocotools would read it as a bbox)
    with pytest.raises(ValueError, match="bad_rle"):
        decode_segmentation({"size": [h + 1, w], "counts": rle["counts"].decode()}, h, w)


def test_rasterise_smaller_overwrites_larger_and_ignore():
    big = [[0, 0], [19, 0], [19, 19], [0, 19]]
    small = [[5, 5], [9, 5], [9, 9], [5, 9]]
    # the small ignore polygon is listed first, yet it is painted after (on top of) the larger target
    m = rasterise_shapes([{"label": "ignore_region", "points": small}, {"label": "target", "points": big}], 24, 24)
    assert m[7, 7] == 255 and m[2, 2] == 1 and m[22, 22] == 0
    assert set(np.unique(m)) == {0, 1, 255}
    m2 = rasterise_shapes([{"label": "target", "points": small}, {"label": "Ignore", "points": big}], 24, 24)
    assert m2[7, 7] == 1 and m2[2, 2] == 255
    flagged = rasterise_shapes([{"label": "FLAG", "points": big}, {"label": "x", "points": small}], 24, 24)
    assert flagged[2, 2] == 0 and flagged[7, 7] == 1
    # coordinates are truncated: 9.9 -> 9, so column 10 stays background; outline is drawn (column 9 is 1)
    trunc = rasterise_shapes([{"label": "t", "points": [[5.7, 5.2], [9.9, 5.2], [9.9, 9.9], [5.7, 9.9]]}], 24, 24)
    assert trunc[7, 9] == 1 and trunc[7, 10] == 0 and trunc[7, 5] == 1 and trunc[7, 4] == 0
    # fewer than 3 points are drawn as READ's OpenCV calls draw them: a 2-point shape is the line between them
    line = rasterise_shapes([{"label": "t", "points": [[1, 1], [5, 5]]}], 24, 24)
    assert np.argwhere(line).tolist() == [[k, k] for k in range(1, 6)] and line.max() == 1
    with pytest.raises(ValueError, match="bad_polygon"):
        rasterise_shapes([{"label": "t", "points": []}], 24, 24)
    outside = rasterise_shapes([{"label": "t", "points": [[-30, -30], [100, -30], [100, 12], [-30, 12]]}], 24, 24)
    assert outside[:13].all() and not outside[13:].any()  # clipped to the image, not rejected


def test_llava_normalise_conversation():
    turns = [{"from": "gpt", "value": "hi"}, {"from": "human", "value": "What is this?\n<image>"},
             {"from": "gpt", "value": "A cat."}]
    conv = normalise_conversation(turns)
    assert conv[0] == {"from": "human", "value": "<image>\nWhat is this?"}
    assert len(conv) == 2
    with pytest.raises(ValueError, match="bad_conversation"):
        normalise_conversation([{"from": "gpt", "value": "only"}])


def _accounting(src) -> tuple[int, int]:
    units, rejects = src.index()
    kept, total = 0, sum(r.num_queries for r in rejects)
    for unit in units:
        result: LoadResult = src.load(unit)
        assert result.num_queries == unit.num_queries
        kept += result.sample.num_queries if result.sample else 0
        total += result.num_queries
    return kept, total


def test_refer_bad_inputs_become_rejects(refer_raw):
    folder = refer_raw / "refer_seg" / "refcoco"
    refs = pickle.loads((folder / "refs(unc_exclude_unified).p").read_bytes())
    inst = json.loads((folder / "instances.json").read_text())
    train = [r for r in refs if r["split"] == "train"]
    n_input = sum(len(r["sentences"]) for r in train)
    images = {im["id"]: im for im in inst["images"]}
    # 1) unknown ann_id on one ref
    train[0]["ann_id"] = 987654321
    # 2) a 2-point polygon on another ref's annotation (pick a ref on a different image)
    other = next(r for r in train if r["image_id"] != train[0]["image_id"])
    ann = next(a for a in inst["annotations"] if a["id"] == other["ann_id"])
    ann["segmentation"] = [[1.0, 1.0, 5.0, 5.0]]
    # 3) a polygon far outside the image is clipped, not rejected
    third = next(r for r in train if r["image_id"] not in (train[0]["image_id"], other["image_id"]))
    ann3 = next(a for a in inst["annotations"] if a["id"] == third["ann_id"])
    ann3["segmentation"] = [[-50.0, -50.0, 5000.0, -50.0, 5000.0, 5000.0, -50.0, 5000.0]]
    # 4) a corrupt image and 5) a missing image
    img_dir = refer_raw / "refer_seg" / "images" / "mscoco" / "images" / "train2014"
    rest = [i for i in sorted({r["image_id"] for r in train}) if i not in (train[0]["image_id"], other["image_id"],
                                                                          third["image_id"])]
    (img_dir / images[rest[0]]["file_name"]).write_bytes(b"\xff\xd8\xff garbage, not a jpeg")
    (img_dir / images[rest[1]]["file_name"]).unlink()
    (folder / "refs(unc_exclude_unified).p").write_bytes(pickle.dumps(refs))
    (folder / "instances.json").write_text(json.dumps(inst))

    src = open_source("refcoco", str(refer_raw), "train")
    samples, rejects = _collect(src)
    codes = sorted(r.code for r in rejects)
    assert codes == ["bad_image", "bad_polygon", "missing_image", "unknown_ann_id"]
    assert all(r.num_queries > 0 for r in rejects)
    kept, total = _accounting(src)
    assert total == n_input
    assert kept + sum(r.num_queries for r in rejects) == n_input
    clipped = [q for s in samples for q in s.queries if q.ann_id == third["ann_id"]]
    assert clipped and all(q.mask.all() for q in clipped)


def test_reasonseg_bad_inputs(refer_raw):
    folder = refer_raw / "reason_seg" / "ReasonSeg" / "train"
    stems = sorted(p.stem for p in folder.glob("*.json"))
    (folder / f"{stems[0]}.json").write_text("{not json")
    meta = json.loads((folder / f"{stems[1]}.json").read_text())
    meta["shapes"].append({"label": "target", "points": []})  # no points at all (READ's cv2 calls would fail)
    (folder / f"{stems[1]}.json").write_text(json.dumps(meta))
    n2 = len(meta["text"])
    (folder / f"{stems[2]}.jpg").unlink()
    samples, rejects = _collect(open_source("reasonseg", str(refer_raw), "train"))
    by_code = {r.code: r for r in rejects}
    assert set(by_code) == {"bad_json", "bad_polygon", "missing_image"}
    assert by_code["bad_polygon"].num_queries == n2
    assert by_code["bad_json"].source.endswith(f"{stems[0]}.json")
    assert [s.key for s in samples] == [stems[3]]


def test_llava_bad_items(refer_raw):
    path = refer_raw / "llava_dataset" / "llava_instruct_150k.json"
    items = json.loads(path.read_text())
    items[0]["conversations"] = "oops"
    items.append(dict(items[1]))  # a second conversation on the same image gets its own key
    path.write_text(json.dumps(items))
    samples, rejects = _collect(open_source("llava_vqa", str(refer_raw), "train"))
    assert [r.code for r in rejects] == ["bad_conversation"] and rejects[0].num_queries == 1
    assert len(samples) == len(items) - 1
    assert len({s.key for s in samples}) == len(samples)
    assert all(s.conversation[0]["value"].startswith("<image>\n") for s in samples)


def test_open_source_config_errors(tmp_path, synth_root):
    with pytest.raises(ValueError, match="dataset: unknown dataset"):
        open_source("cocostuff9", str(synth_root), "train")
    with pytest.raises(ValueError, match="root:"):
        open_source("refcoco", str(tmp_path / "nope"), "train")
    with pytest.raises(ValueError, match="split_by: no refs"):
        open_source("refcoco", str(synth_root), "train", split_by="google")
    assert "ade20k" in DATASETS and isinstance(Reject(source="a", key="b", num_queries=0, reason="x: y").code, str)
