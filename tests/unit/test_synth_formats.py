"""The synthetic trees load the way READ's loaders load the real datasets, and masks match what was drawn.

READ's rules are written out here on their own (file names of `determine_split_by`, `decode_segmentation`,
`get_mask_from_json`, the UTF-8-then-cp1252 JSON read, `cv2.imread`), not taken from pipelines.synth or the readers.
"""

from __future__ import annotations

import copy
import io
import json
import pickle
import pickletools
import re

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from pipelines.synth import SynthConfig
from pipelines.synth.ade20k import label_map
from pipelines.synth.palette import ADE20K_CLASSES, COLOURS, SHAPES
from pipelines.synth.reasonseg import sample_record
from pipelines.synth.refer import LAYOUT, pool_scene
from schemas.sample import QUERY_TYPES
from tests.conformance.expected import reasonseg_mask
from tests.fixtures.synth import SMALL_TREE

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")  # numpy 2 copy= notice

READ_REFS_FILE = {
    "refclef": "refs(unc).p",
    "refcoco": "refs(unc_exclude_unified).p", "refcoco+": "refs(unc_exclude_unified).p",
    "R-refcoco": "refs(unc_exclude_unified).p", "R-refcoco+": "refs(unc_exclude_unified).p",
    "refcocog": "refs(umd_exclude_unified).p", "R-refcocog": "refs(umd_exclude_unified).p",
    "fprefcoco": "refs(berkeley_exclude_unified).p", "fprefcoco+": "refs(berkeley_exclude_unified).p",
    "fprefcocog": "refs(berkeley_exclude_unified).p",
}
"""The refs file READ opens per dataset (READ `ReferSegDataset.determine_split_by`)."""
SPLITS = {"refclef": {"train", "val", "testA", "testB", "testC"}, "unc": {"train", "val", "testA", "testB"},
          "umd": {"train", "val", "test"}}
COCO_DIR = "refer_seg/images/mscoco/images/train2014"
CLEF_DIR = "refer_seg/images/saiapr_tc-12"


def _splits(name):
    if name == "refclef":
        return SPLITS["refclef"]
    return SPLITS["umd"] if name.endswith("g") else SPLITS["unc"]


def _image_dir(synth_root, name):
    return synth_root / (CLEF_DIR if name == "refclef" else COCO_DIR)


class _PlainUnpickler(pickle.Unpickler):
    """What readers do with refs pickles: admit no globals at all (plain containers and scalars only)."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refs pickle tries to load {module}.{name}")


def _load_refs(path):
    with open(path, "rb") as f:
        return _PlainUnpickler(f).load()


def _read_decode_segmentation(segmentation, height, width):
    """READ dataloaders/refer_seg_dataset.py `process_annotation` + `decode_segmentation`, on a copy."""
    seg = copy.deepcopy(segmentation)
    if len(seg) == 0:
        return np.zeros((height, width), dtype=np.uint8)
    if type(seg[0]) == list:  # noqa: E721 (READ's exact test)
        rle = mask_utils.frPyObjects(seg, height, width)
    else:
        rle = seg
        for part in rle:
            if not isinstance(part["counts"], bytes):
                part["counts"] = part["counts"].encode()
    return np.sum(mask_utils.decode(rle), axis=2).astype(np.uint8)


def _read_json(path):
    """READ `get_mask_from_json`'s read: UTF-8 first, cp1252 when that fails."""
    data = path.read_bytes()
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return json.loads(data.decode("cp1252"))


def _nearest_colour(rgb):
    """The palette colour name closest to a mean RGB (JPEG chroma subsampling dulls small objects)."""
    return min(COLOURS, key=lambda c: float(np.abs(np.array(COLOURS[c]) - rgb).sum()))


def _reasonseg_files(synth_root, split):
    return sorted((synth_root / "reason_seg/ReasonSeg" / split).glob("*.json"))


@pytest.mark.parametrize("name", sorted(LAYOUT))
def test_refer_tree_loads_like_refer_api(synth_root, name):
    folder = synth_root / "refer_seg" / name
    assert sorted(p.name for p in folder.glob("refs(*).p")) == [READ_REFS_FILE[name]]
    inst = json.loads((folder / "instances.json").read_text())
    refs = _load_refs(folder / READ_REFS_FILE[name])
    images = {im["id"]: im for im in inst["images"]}
    anns = {a["id"]: a for a in inst["annotations"]}
    assert {c["name"] for c in inst["categories"]} == set(SHAPES)
    assert {r["split"] for r in refs} == _splits(name)
    for im in images.values():
        path = _image_dir(synth_root, name) / im["file_name"]
        assert path.is_file()
        assert cv2.imread(str(path)).shape[:2] == (im["height"], im["width"])
        if name == "refclef":  # saiapr_tc-12 layout: <dd>/images/<id>.jpg
            m = re.fullmatch(r"(\d\d)/images/(\d+)\.jpg", im["file_name"])
            assert m and int(m.group(2)) == im["id"] and int(m.group(1)) == im["id"] // 1000
        else:
            assert im["file_name"] == f"COCO_train2014_{im['id']:012d}.jpg"
        assert sum(a["image_id"] == im["id"] for a in anns.values()) >= 2
    if name == "refclef":
        assert len({images[i]["file_name"].split("/")[0] for i in images}) >= 2  # several <dd> folders
    sent_ids = [s["sent_id"] for r in refs for s in r["sentences"]]
    assert len(set(sent_ids)) == len(sent_ids) and len({r["ref_id"] for r in refs}) == len(refs)
    for ref in refs:
        assert set(ref) == {"ref_id", "ann_id", "image_id", "category_id", "split", "sent_ids", "file_name",
                            "sentences"}
        ann = anns[ref["ann_id"]]
        assert ann["image_id"] == ref["image_id"] and ann["category_id"] == ref["category_id"]
        stem = images[ref["image_id"]]["file_name"].rsplit("/", 1)[-1][: -len(".jpg")]
        assert ref["file_name"] == f"{stem}_{ref['ann_id']}.jpg"
        assert ref["sent_ids"] == [s["sent_id"] for s in ref["sentences"]]
        for s in ref["sentences"]:
            assert s["sent"] == s["raw"].lower() and s["tokens"] == s["sent"].split()
            assert s["type"] in QUERY_TYPES
            if name.startswith("R-"):
                assert isinstance(s["exist"], bool) and s["exist"] == (s["type"] != "negative")
            if name.startswith("fp"):
                assert s["is_false_premise"] == (s["type"] == "false_premise")
                assert s["gt_sent"] and (s["is_false_premise"] or s["gt_sent"] == s["sent"])
            if name.endswith("+"):
                assert s["type"] != "spatial"  # RefCOCO+ bans location words
    if name.startswith("R-"):
        assert any(not s["exist"] for r in refs for s in r["sentences"])
    if name.startswith("fp"):
        flags = [s["is_false_premise"] for r in refs for s in r["sentences"]]
        assert 0.3 < np.mean(flags) <= 0.5  # roughly 1:1 true and false premises


@pytest.mark.parametrize("name", sorted(LAYOUT))
def test_refer_segmentations_decode_as_read_does(synth_root, name):
    """Every annotation is a polygon list or a LIST of RLE dicts (READ indexes segmentation[0]: a bare RLE dict
    raises KeyError(0)); RefCLEF's are RLE lists with compressed counts that `pycocotools.mask.decode` takes whole."""
    inst = json.loads((synth_root / "refer_seg" / name / "instances.json").read_text())
    images = {im["id"]: im for im in inst["images"]}
    kinds = set()
    for ann in inst["annotations"]:
        seg, im = ann["segmentation"], images[ann["image_id"]]
        h, w = im["height"], im["width"]
        assert isinstance(seg, list) and seg
        if type(seg[0]) == list:  # noqa: E721
            kinds.add("polygon")
            assert all(len(p) >= 6 and len(p) % 2 == 0 and all(isinstance(v, float) for v in p) for p in seg)
        else:
            kinds.add(f"rle x{len(seg)}")
            assert all(set(part) == {"size", "counts"} and part["size"] == [h, w] for part in seg)
            assert all(isinstance(part["counts"], str) for part in seg)  # READ calls counts.encode()
        mask = _read_decode_segmentation(seg, h, w)
        assert mask.shape == (h, w) and set(np.unique(mask)) == {0, 1}  # parts are disjoint: their sum stays 0/1
        assert mask.sum() == ann["area"]
        assert ann["bbox"] == list(mask_utils.toBbox(mask_utils.encode(np.asfortranarray(mask))))
        if name == "refclef":  # REFER getMask: pycocotools decodes the whole list, the parts are summed
            rles = [{"size": p["size"], "counts": p["counts"].encode()} for p in seg]
            np.testing.assert_array_equal(mask_utils.decode(rles).sum(axis=2), mask)
    if name == "refclef":
        assert kinds == {"rle x1", "rle x2"}
    else:
        assert "polygon" in kinds and kinds <= {"polygon", "rle x1"}


def test_refs_pickles_as_refer_wrote_them(synth_root):
    """Python-2 cPickle files: protocol 0 or 2 (both occur), strings as Python-2 byte strings, plain data only, and
    the stock unpickler (READ: `pickle.load(open(f, "rb"))`) reads them."""
    protocols = {}
    for name in LAYOUT:
        data = (synth_root / "refer_seg" / name / READ_REFS_FILE[name]).read_bytes()
        ops = {op.name for op, _, _ in pickletools.genops(data)}
        if data.startswith(b"\x80\x02"):
            protocols[name] = 2
            assert "SHORT_BINSTRING" in ops and not ops & {"BINUNICODE", "SHORT_BINUNICODE", "FRAME"}
        else:
            assert not data.startswith(b"\x80")
            protocols[name] = 0
            assert max(op.proto for op, _, _ in pickletools.genops(data)) == 0
            assert "STRING" in ops and "UNICODE" not in ops
        refs = pickle.loads(data)
        assert refs == _PlainUnpickler(io.BytesIO(data)).load()

        def plain(x):
            if isinstance(x, list):
                return all(plain(v) for v in x)
            if isinstance(x, dict):
                return all(isinstance(k, str) and plain(v) for k, v in x.items())
            return isinstance(x, (str, int, bool))

        assert isinstance(refs, list) and refs and plain(refs)
    assert set(protocols.values()) == {0, 2}


@pytest.mark.parametrize("name", ["refcoco", "refclef"])
def test_refer_masks_match_the_drawn_objects(make_synth_tree, name):
    sizes = {f"num_{name}_{split}": 0 for split in _splits(name)} | {f"num_{name}_train": 6}
    root = make_synth_tree(datasets=[name], image_size=[96, 80], rle_fraction=0.5, **sizes)
    cfg = SynthConfig(out=str(root), **{**SMALL_TREE, "image_size": [96, 80], "rle_fraction": 0.5})
    inst = json.loads((root / "refer_seg" / name / "instances.json").read_text())
    kinds = set()
    pool = "saiapr" if name == "refclef" else "mscoco"
    for k, im in enumerate(inst["images"]):
        scene = pool_scene(cfg, k, pool)
        decoded = cv2.imread(str(_image_dir(root, name) / im["file_name"]))[:, :, ::-1]
        assert decoded.shape[:2] == (im["height"], im["width"]) == (80, 96)
        rgb = decoded.astype(np.int32)
        for ann in (a for a in inst["annotations"] if a["image_id"] == im["id"]):
            obj = scene.objects[ann["id"] % 10]
            assert SHAPES[ann["category_id"] - 1] == obj.shape and ann["colour"] == obj.colour
            mask = _read_decode_segmentation(ann["segmentation"], im["height"], im["width"])
            kinds.add("polygon" if type(ann["segmentation"][0]) == list else "rle")  # noqa: E721
            np.testing.assert_array_equal(mask, obj.mask)  # both decode to exactly the painted pixels
            assert ann["area"] == obj.mask.sum()
            # the object really is painted in its colour: its pixels differ from the background around it
            inside = rgb[obj.mask.astype(bool)].mean(axis=0)
            outside = rgb[sum(o.mask for o in scene.objects) == 0].mean(0)
            assert np.abs(inside - outside).max() > 20
            assert _nearest_colour(inside) == obj.colour
    assert kinds == ({"rle"} if name == "refclef" else {"rle", "polygon"})


def test_reasonseg_tree(synth_root):
    labels, sentence_flags = set(), set()
    for split, n in (("train", SMALL_TREE["num_reasonseg_train"]), ("val", SMALL_TREE["num_reasonseg_val"])):
        files = _reasonseg_files(synth_root, split)
        assert len(files) == n
        for path in files:
            record = _read_json(path)
            image = cv2.imread(str(path.with_suffix(".jpg")))[:, :, ::-1]  # READ: EXIF orientation applied
            h, w = image.shape[:2]
            assert (record["imageHeight"], record["imageWidth"]) == (h, w)
            assert 1 <= len(record["text"]) <= 5 and len(record["query_types"]) == len(record["text"])
            assert all(t in QUERY_TYPES for t in record["query_types"])
            assert len(record["objects"]) >= 2
            sentence_flags.add(record["is_sentence"])
            labels |= {s["label"] for s in record["shapes"]}
            for s in record["shapes"]:
                pts = np.array(s["points"])
                assert (pts >= 0).all() and (pts[:, 0] <= w - 1).all() and (pts[:, 1] <= h - 1).all()
            mask = reasonseg_mask(record["shapes"], h, w)
            targets = [record["objects"][t] for t in record["target_indices"]]
            # the objects' truth areas are READ's mask: exactly the target pixels are 1
            assert (mask == 1).sum() == sum(t["area"] for t in targets)
            for t in targets:
                x, y, bw, bh = t["bbox"]
                assert (mask[y: y + bh, x: x + bw] == 1).sum() >= t["area"]
                # and the image is painted on them: the target's colour, not the grey background
                colour = image[y: y + bh, x: x + bw][mask[y: y + bh, x: x + bw] == 1].mean(axis=0)
                assert _nearest_colour(colour) == t["colour"], path.name
            others = [o["area"] for i, o in enumerate(record["objects"]) if i not in record["target_indices"]]
            ignored = int((mask == 255).sum())
            assert ignored == 0 or ignored in others
            assert (ignored > 0) == any(s["label"] == "ignore" for s in record["shapes"])
    assert sentence_flags == {True, False}
    assert {label.lower() for label in labels} == {"target", "ignore", "flag"}


def test_reasonseg_one_cp1252_json_per_split(synth_root):
    """READ reads with UTF-8 and falls back to cp1252: one JSON per split needs the fallback, and decoding it as
    cp1252 (not latin-1) gives the curly apostrophe of its first text."""
    for split in ("train", "val"):
        cp1252 = []
        for path in _reasonseg_files(synth_root, split):
            data = path.read_bytes()
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                cp1252.append(path)
                record = json.loads(data.decode("cp1252"))
                assert "\u2019" in record["text"][0] and b"\x92" in data
                assert record["is_sentence"] is True
                assert data.decode("latin-1") != data.decode("cp1252")
        assert len(cp1252) == 1, (split, cp1252)


def test_reasonseg_exif_rotated_image(synth_root):
    """Exactly one image (the first train one) is stored rotated with an EXIF Orientation tag; decoded as READ does
    (cv2.imread applies the tag) it is the upright scene, of the size and coordinates its JSON records."""
    rotated = []
    for path in sorted((synth_root / "reason_seg/ReasonSeg").glob("*/*.jpg")):
        with Image.open(path) as img:
            orientation = img.getexif().get(0x0112)
            raw_w, raw_h = img.size
        if orientation is not None:
            rotated.append(path)
            assert orientation in (6, 8)
            record = _read_json(path.with_suffix(".json"))
            upright = cv2.imread(str(path))[:, :, ::-1]
            assert upright.shape[:2] == (record["imageHeight"], record["imageWidth"]) == (raw_w, raw_h)
            assert raw_w != raw_h  # so a reader that ignores the tag gets the wrong size
            ignoring = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
            assert ignoring.shape[:2] == (raw_h, raw_w)
            scene, _ = sample_record(SynthConfig(out="unused", **SMALL_TREE), "train", 0)
            diff = np.abs(upright.astype(np.int32) - scene.rgb).mean()
            turned = np.abs(upright.astype(np.int32) - scene.rgb[::-1, ::-1]).mean()  # same size, wrong way up
            assert diff < 10 and diff < 0.5 * turned, (diff, turned)  # the same picture up to JPEG loss
            mask = reasonseg_mask(record["shapes"], *upright.shape[:2])
            assert (mask == 1).sum() == sum(record["objects"][t]["area"] for t in record["target_indices"])
    assert [p.name for p in rotated] == ["synth_train_00000.jpg"]


def test_llava_tree(synth_root):
    items = json.loads((synth_root / "llava_dataset/llava_instruct_150k.json").read_text())
    assert len(items) == SMALL_TREE["num_llava"]
    placements = set()
    for item in items:
        assert (synth_root / "coco/train2017" / item["image"]).is_file() and item["image"] == f"{item['id']}.jpg"
        turns = item["conversations"]
        assert len(turns) >= 4 and [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2)
        assert sum(t["value"].count("<image>") for t in turns) == 1
        placements.add(turns[0]["value"].startswith("<image>\n"))
        assert len(item["objects"]) >= 2
        for q, a in zip(turns[::2], turns[1::2]):
            if q["value"].replace("<image>", "").strip() == "How many shapes are in the image?":
                number = ("no", "one", "two", "three", "four", "five").index(a["value"].split()[2])
                assert number == len(item["objects"])
    assert len(placements) >= 1


def test_ade20k_tree(synth_root):
    images = sorted((synth_root / "ade20k/images/training").glob("*.jpg"))
    assert len(images) == SMALL_TREE["num_ade20k"]
    valid = {k + 1 for k, _ in ADE20K_CLASSES.values()} | {0}
    for path in images:
        label = np.asarray(Image.open(synth_root / "ade20k/annotations/training" / f"{path.stem}.png"))
        assert label.dtype == np.uint8 and label.shape == Image.open(path).size[::-1]
        assert set(np.unique(label)) <= valid and (label > 0).any() and (label == 0).any()


def test_ade20k_label_map_marks_every_object():
    from pipelines.synth.rng import rng_for
    from pipelines.synth.scene import sample_scene

    scene = sample_scene(rng_for(3, "t"), width=64, height=48, min_objects=3, max_objects=3, noise=0)
    label = label_map(scene)
    for o in scene.objects:
        assert (label[o.mask.astype(bool)] == ADE20K_CLASSES[o.shape][0] + 1).all()
    assert (label[sum(o.mask for o in scene.objects) == 0] == 0).all()


def test_summary_counts_match_files(synth_root):
    summary = json.loads((synth_root / "synth_summary.json").read_text())
    for name in ("refcoco", "refclef"):
        refs = _load_refs(synth_root / "refer_seg" / name / READ_REFS_FILE[name])
        assert set(summary[name]) == _splits(name)
        for split in _splits(name):
            assert summary[name][split]["queries"] == sum(
                len(r["sentences"]) for r in refs if r["split"] == split)
            assert summary[name][split]["images"] >= len({r["image_id"] for r in refs if r["split"] == split}) > 0
    assert summary["refclef"]["train"]["images"] == SMALL_TREE["num_refclef_train"]
    records = [_read_json(p) for p in _reasonseg_files(synth_root, "train")]
    assert summary["reasonseg"]["train"]["queries"] == sum(len(r["text"]) for r in records)


def test_jpeg_bytes_decode(synth_root):
    for folder in (COCO_DIR, CLEF_DIR):
        path = next((synth_root / folder).rglob("*.jpg"))
        assert Image.open(io.BytesIO(path.read_bytes())).format == "JPEG"
