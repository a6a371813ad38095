"""COCO-Stuff, PASCAL-Part, PACO-LVIS and Mapillary readers: class naming, masks, bad inputs quarantined with the
file named, and the query accounting (kept + rejected == input)."""

from __future__ import annotations

import io
import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from pipelines.sources import LoadResult, Reject, iter_samples, open_source
from pipelines.sources.coco_parts import category_query, paco_lvis_name, pascal_part_name
from pipelines.sources.cocostuff import COCOSTUFF_CLASSES
from schemas.sample import ShardSample, encode

SEMSEG = ("cocostuff", "pascal_part", "paco_lvis", "mapillary")
PART_JSON = {"pascal_part": "vlpart/pascal_part/train.json",
             "paco_lvis": "vlpart/paco/annotations/paco_lvis_v1_train.json"}


@pytest.fixture
def semseg_raw(make_synth_tree) -> pathlib.Path:
    """A fresh synthetic tree of the four datasets (3 images each) that tests may corrupt."""
    return make_synth_tree(datasets=list(SEMSEG), num_cocostuff=3, num_pascal_part=3, num_paco_lvis=3,
                           num_mapillary=3)


def _collect(src) -> tuple[list[ShardSample], list[Reject]]:
    samples, rejects = [], []
    for item in iter_samples(src):
        (samples if isinstance(item, ShardSample) else rejects).append(item)
    return samples, rejects


def _accounting(src) -> tuple[int, int, list[Reject]]:
    """(kept queries, input queries, all rejects), checking each unit's result against what the index said."""
    units, rejects = src.index()
    rejects = list(rejects)
    kept = 0
    for unit in units:
        result: LoadResult = src.load(unit)
        if unit.num_queries is not None:
            assert result.num_queries == unit.num_queries, unit.key
        if result.sample is not None:
            encode(result.sample)  # validates the schema
            kept += result.sample.num_queries
        rejects += result.rejects
    return kept, kept + sum(r.num_queries for r in rejects), rejects


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_cocostuff_class_list_is_reads():
    assert len(COCOSTUFF_CLASSES) == 182 and len(set(COCOSTUFF_CLASSES)) == 182
    # READ's file line "v+1: name" is label value v: "1: person" -> 0, "12: street sign" -> 11, "157: sky" -> 156
    assert (COCOSTUFF_CLASSES[0], COCOSTUFF_CLASSES[11], COCOSTUFF_CLASSES[156], COCOSTUFF_CLASSES[181]) == (
        "person", "street sign", "sky", "wood")
    assert sum("-" in c for c in COCOSTUFF_CLASSES) == 28 and COCOSTUFF_CLASSES[172] == "wall-other"


def test_cocostuff_values_index_the_list_and_dash_classes_are_ignored(semseg_raw):
    stem = sorted(p.stem for p in (semseg_raw / "cocostuff/train2017").glob("*.png"))[0]
    height, width = Image.open(semseg_raw / "coco/train2017" / f"{stem}.jpg").size[::-1]
    label = np.full((height, width), 156, dtype=np.uint8)  # sky
    label[:5, :7] = 0  # person
    label[10:20, :] = 172  # wall-other: READ ignores it
    label[-1, :] = 255
    (semseg_raw / "cocostuff/train2017" / f"{stem}.png").write_bytes(_png(label))
    samples, rejects = _collect(open_source("cocostuff", str(semseg_raw), "train"))
    assert rejects == []
    sample = next(s for s in samples if s.key == stem)
    assert [(q.query_id, q.text, q.query_type) for q in sample.queries] == [
        (f"{stem}:c0", "person", "class"), (f"{stem}:c156", "sky", "class")]
    ignore = (label == 172) | (label == 255)
    for q, value in zip(sample.queries, (0, 156), strict=True):
        assert np.array_equal(q.mask, np.where(ignore, 255, label == value).astype(np.uint8))
    absent = sample.extra["absent_classes"]
    assert len(absent) == 182 - 3 and not {"person", "sky", "wall-other"} & set(absent) and "wall-brick" in absent


def test_mapillary_offers_unlabeled_and_lower_cases_readable(semseg_raw):
    config = json.loads((semseg_raw / "mapillary/config_v2.0.json").read_text())
    names = [label["readable"].lower() for label in config["labels"]]
    samples, rejects = _collect(open_source("mapillary", str(semseg_raw), "train"))
    assert rejects == [] and names[-1] == "unlabeled"
    texts = {q.text for s in samples for q in s.queries}
    assert "unlabeled" in texts and texts <= set(names) and "traffic sign (front)" in names
    for s in samples:
        assert sorted([q.text for q in s.queries] + s.extra["absent_classes"]) == sorted(names)
        assert all(set(np.unique(q.mask)) <= {0, 1} for q in s.queries)  # no ignore label in these maps


def test_part_category_naming():
    assert pascal_part_name(" aeroplane:body ") == ("aeroplane", "body")
    assert pascal_part_name("person:left eye") == ("person", "left eye")
    assert paco_lvis_name("car_(automobile):wheel_(front)") == ("car", "wheel")
    assert paco_lvis_name("trash_can") == "trash_can" and paco_lvis_name("trash_can:lid") == ("trash_can", "lid")
    for bad in ("aeroplane", "a:b:c", "dog:"):
        with pytest.raises(ValueError, match="object:part"):
            pascal_part_name(bad)
    with pytest.raises(ValueError):
        paco_lvis_name("a:b:c")
    assert category_query(7, ("car", "wheel")) == {
        "text": "the wheel of the car", "query_type": "part",
        "extra": {"category_id": 7, "object": "car", "part": "wheel"}}
    assert category_query(3, "trash_can")["query_type"] == "class"


@pytest.mark.parametrize("dataset", ["pascal_part", "paco_lvis"])
def test_parts_one_query_per_annotation(semseg_raw, dataset):
    data = json.loads((semseg_raw / PART_JSON[dataset]).read_text())
    samples, rejects = _collect(open_source(dataset, str(semseg_raw), "train"))
    assert rejects == []
    ids = {f"{pathlib.Path(im['file_name']).stem}:a{a['id']}" for im in data["images"] for a in data["annotations"]
           if a["image_id"] == im["id"]}
    assert {q.query_id for s in samples for q in s.queries} == ids
    for s in samples:
        present = {q.extra["category_id"] for q in s.queries}
        assert len(s.extra["absent_classes"]) == len(data["categories"]) - len(present)
        assert all(q.ann_id == int(q.query_id.split(":a")[1]) for q in s.queries)
    if dataset == "pascal_part":  # two eyes per shape: two queries, same text, each its own mask
        eyes = [q for q in samples[0].queries if q.extra["part"] == "eye"]
        assert len(eyes) >= 4 and len({q.text for q in eyes[:2]}) == 1
        assert not np.array_equal(eyes[0].mask, eyes[1].mask)


def test_label_maps_bad_inputs_are_quarantined(semseg_raw):
    labels = semseg_raw / "cocostuff/train2017"
    stems = sorted(p.stem for p in labels.glob("*.png"))
    (labels / f"{stems[0]}.png").write_bytes(_png(np.zeros((7, 9), dtype=np.uint8)))  # wrong size, holds "person"
    (labels / f"{stems[1]}.png").write_bytes(b"not a png")
    (semseg_raw / "coco/train2017" / f"{stems[2]}.jpg").unlink()
    (labels / "orphan.png").write_bytes(_png(np.zeros((7, 9), dtype=np.uint8)))
    samples, rejects = _collect(open_source("cocostuff", str(semseg_raw), "train"))
    assert samples == []
    assert sorted((r.code, r.key, r.num_queries) for r in rejects) == [
        ("bad_label", stems[1], 0), ("missing_image", stems[2], 0), ("missing_image", "orphan", 0),
        ("size_mismatch", stems[0], 1)]
    by_code = {r.code: r for r in rejects}
    assert str(labels / f"{stems[0]}.png") in by_code["size_mismatch"].reason
    assert by_code["bad_label"].source == str(labels / f"{stems[1]}.png")
    assert {r.source for r in rejects if r.code == "missing_image"} == {str(labels / "orphan.png"),
                                                                        str(labels / f"{stems[2]}.png")}

    mapillary = semseg_raw / "mapillary"
    mstem = sorted(p.stem for p in (mapillary / "training/v2.0/labels").glob("*.png"))[0]
    lab = np.asarray(Image.open(mapillary / "training/v2.0/labels" / f"{mstem}.png")).copy()
    lab[0, 0] = 200  # beyond the config's labels
    (mapillary / "training/v2.0/labels" / f"{mstem}.png").write_bytes(_png(lab))
    kept, total, rejects = _accounting(open_source("mapillary", str(semseg_raw), "train"))
    (bad,) = rejects
    assert bad.code == "unknown_class" and "[200]" in bad.reason and bad.source.endswith(f"{mstem}.png")
    assert bad.num_queries == len(np.unique(lab)) and kept + bad.num_queries == total
    (mapillary / "config_v2.0.json").write_text('{"labels": [')
    units, rejects = open_source("mapillary", str(semseg_raw), "train").index()
    assert units == [] and [(r.code, r.num_queries) for r in rejects] == [("bad_config", 0)]
    assert rejects[0].source.endswith("config_v2.0.json")


def test_parts_bad_inputs_are_quarantined(semseg_raw):
    path = semseg_raw / PART_JSON["pascal_part"]
    data = json.loads(path.read_text())
    n_input = len(data["annotations"])
    anns = data["annotations"]
    anns[0]["category_id"] = 999  # unknown category
    anns[1]["segmentation"] = []  # annToMask raises on it
    anns[2]["segmentation"] = [[1.0, 2.0]]  # a 1-point polygon: pycocotools raises a bare Exception
    anns.append(dict(anns[3]))  # duplicate annotation id
    n_input += 1
    data["categories"].append({"id": 50, "name": "no part here"})
    anns.append(dict(anns[4], id=10_000, category_id=50))
    n_input += 1
    path.write_text(json.dumps(data))
    image_dir = semseg_raw / "vlpart/pascal_part/VOCdevkit/VOC2010/JPEGImages"
    last = data["images"][-1]
    (image_dir / last["file_name"]).unlink()
    n_last = sum(a["image_id"] == last["id"] for a in anns)

    src = open_source("pascal_part", str(semseg_raw), "train")
    kept, total, rejects = _accounting(src)
    assert total == n_input and kept + sum(r.num_queries for r in rejects) == n_input
    by_code: dict[str, list[Reject]] = {}
    for r in rejects:
        by_code.setdefault(r.code, []).append(r)
    assert sorted(by_code) == ["bad_category", "bad_polygon", "duplicate_ann_id", "empty_segmentation",
                               "missing_image", "unknown_category"]
    assert [r.num_queries for r in by_code["missing_image"]] == [n_last]
    assert by_code["missing_image"][0].source == str(image_dir / last["file_name"])
    for code in ("unknown_category", "bad_category", "duplicate_ann_id", "empty_segmentation", "bad_polygon"):
        (r,) = by_code[code]
        assert r.num_queries == 1 and str(path) in (r.source + r.reason)
    assert "999" in by_code["unknown_category"][0].reason

    path.write_text("{broken")
    units, rejects = src.index()
    assert units == [] and [(r.code, r.num_queries, r.source) for r in rejects] == [("bad_json", 0, str(path))]
    path.write_text(json.dumps({"images": [], "annotations": [{"id": 1}, {"id": 2}], "categories": {}}))
    units, rejects = src.index()
    assert units == [] and [(r.code, r.num_queries) for r in rejects] == [("bad_json", 2)]


def test_paco_missing_image_and_no_annotation_image(semseg_raw):
    path = semseg_raw / PART_JSON["paco_lvis"]
    data = json.loads(path.read_text())
    data["images"].append({"id": 5, "file_name": "train2017/000000000005.jpg", "height": 64, "width": 80})
    data["images"].append({"id": 6, "file_name": "train2017/000000000006.jpg", "height": 64, "width": 80})
    data["annotations"].append(dict(data["annotations"][0], id=99_999, image_id=6))
    path.write_text(json.dumps(data))
    kept, total, rejects = _accounting(open_source("paco_lvis", str(semseg_raw), "train"))
    assert total == len(data["annotations"]) and kept == total - 1
    assert sorted((r.code, r.num_queries) for r in rejects) == [("missing_image", 1), ("no_annotations", 0)]
    missing = next(r for r in rejects if r.code == "missing_image")
    assert missing.source == str(semseg_raw / "coco/train2017/000000000006.jpg")


def test_config_errors_name_the_layout(tmp_path):
    for dataset, expected in (("cocostuff", "cocostuff"), ("pascal_part", "vlpart/pascal_part/train.json"),
                              ("paco_lvis", "paco_lvis_v1_train.json"), ("mapillary", "config_v2.0.json")):
        with pytest.raises(ValueError, match=f"root: .*{expected}"):
            open_source(dataset, str(tmp_path), "train")
