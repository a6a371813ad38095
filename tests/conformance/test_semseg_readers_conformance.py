"""COCO-Stuff, Mapillary, PASCAL-Part and PACO-LVIS through the preprocessing job, against READ's SemSegDataset.

The raw trees are written here, in the layouts READ's loaders read (rui-qian/READ `dataloaders/sem_seg_dataset.py`,
`init_cocostuff`, `init_mapillary`, `init_pascal_part`, `init_paco_lvis`; cited per tree below), never with
pipelines.synth. Expected queries are computed independently of the readers: label maps with READ's own arithmetic
(transcribed in `read_label_map_classes`), part masks with pycocotools `COCO.annToMask`, READ's very call, and image
sizes with `cv2.imread` (EXIF applied, as READ reads images). Each dataset runs through `jobs.preprocess.main` with 1
and 2 workers on one real local Ray cluster; both runs must write the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import pathlib

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from jobs.preprocess import main
from tests.fixtures.preprocess import read_out, tree_bytes

SEMSEG_COVERED = ["cocostuff", "mapillary", "pascal_part", "paco_lvis"]
"""The datasets this module has real-layout fixtures for (run with 1 and 2 workers)."""
COCOSTUFF_FACTS = {0: "person", 36: "sports ball", 156: "sky", 172: "wall-other", 181: "wood"}
"""Label value -> name in READ's dataloaders/cocostuff_classes.txt (line "v+1: name"; READ drops the first line
"0: unlabeled"). 172 holds "-", so READ sets its pixels to the ignore label."""
COCOSTUFF_NUM_CLASSES = 182
"""Lines of READ's cocostuff_classes.txt after the first."""
IGNORE = 255

MAPILLARY_LABELS = [  # config_v2.0.json `labels` entries (Mapillary Vistas v2.0 fields), "Unlabeled" last as in v2.0
    {"name": "construction--flat--road", "readable": "Road", "color": [128, 64, 128], "instances": False,
     "evaluate": True},
    {"name": "nature--sky", "readable": "Sky", "color": [70, 130, 180], "instances": False, "evaluate": True},
    {"name": "object--traffic-light--general-upright", "readable": "Traffic Light - General (Upright)",
     "color": [250, 170, 30], "instances": True, "evaluate": True},
    {"name": "human--person--individual", "readable": "Person", "color": [220, 20, 60], "instances": True,
     "evaluate": True},
    {"name": "void--unlabeled", "readable": "Unlabeled", "color": [0, 0, 0], "instances": False, "evaluate": False},
]


def _jpeg(height: int, width: int, seed: int, *, exif_rotated: bool = False) -> bytes:
    """A noisy upright RGB image as JPEG; `exif_rotated` stores its pixels turned 90 degrees with EXIF Orientation 6,
    as phones store photos (cv2.imread turns it upright again)."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8), "RGB")
    buf = io.BytesIO()
    if exif_rotated:
        exif = Image.Exif()
        exif[0x0112] = 6
        img.transpose(Image.Transpose.ROTATE_90).save(buf, format="JPEG", quality=90, exif=exif.tobytes())
    else:
        img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _png(label: np.ndarray, palette: list[int] | None = None) -> bytes:
    img = Image.fromarray(label, "L" if palette is None else "P")
    if palette is not None:
        img.putpalette(palette)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _write(path: pathlib.Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)


def _blocks(height: int, width: int, values: list[int]) -> np.ndarray:
    """A label map of horizontal bands, one per value, plus a square of the first value in the bottom-right."""
    label = np.zeros((height, width), dtype=np.uint8)
    for k, value in enumerate(values):
        label[k * height // len(values): (k + 1) * height // len(values)] = value
    label[-5:, -6:] = values[0]
    return label


# ---- the trees ----

COCOSTUFF_MAPS = {  # stem -> label values ((H, W) label maps over coco/train2017/<stem>.jpg)
    "000000000009": [156, 0, 172, 36, IGNORE],
    "000000000025": [181, 172],
    "000000000030": [172, IGNORE],  # nothing READ keeps: READ re-draws -> no_classes
    "000000000034": [156, 190],  # 190 is beyond READ's 182 classes (READ: IndexError) -> unknown_class
}


def write_cocostuff(root: pathlib.Path) -> dict[str, np.ndarray]:
    """READ init_cocostuff: glob `cocostuff/train2017/*.png`; image = path with .png -> .jpg, cocostuff -> coco."""
    labels = {}
    for k, (stem, values) in enumerate(COCOSTUFF_MAPS.items()):
        labels[stem] = _blocks(24, 32, values)
        _write(root / "cocostuff" / "train2017" / f"{stem}.png", _png(labels[stem]))
        _write(root / "coco" / "train2017" / f"{stem}.jpg", _jpeg(24, 32, k))
    _write(root / "coco" / "train2017" / "000000000049.jpg", _jpeg(24, 32, 9))  # a COCO image COCO-Stuff lacks
    return labels


MAPILLARY_MAPS = {"-0aBcD_eFgHiJkLmNoPqRs": [1, 0, 2, 4], "zz9Yx8Wv7Ut6Sr5Qp4On3M": [3, 0, 1]}


def write_mapillary(root: pathlib.Path) -> dict[str, np.ndarray]:
    """READ init_mapillary: `mapillary/config_v2.0.json` labels[].readable lower-cased; glob
    `mapillary/training/v2.0/labels/*.png` (palette PNGs); image = .png -> .jpg, v2.0/labels -> images."""
    _write(root / "mapillary" / "config_v2.0.json", json.dumps({"labels": MAPILLARY_LABELS, "version": "2.0"}))
    palette = [c for label in MAPILLARY_LABELS for c in label["color"]]
    labels = {}
    for k, (stem, values) in enumerate(MAPILLARY_MAPS.items()):
        labels[stem] = _blocks(30, 20, values)
        _write(root / "mapillary" / "training" / "v2.0" / "labels" / f"{stem}.png", _png(labels[stem], palette))
        _write(root / "mapillary" / "training" / "images" / f"{stem}.jpg", _jpeg(30, 20, 20 + k))
    return labels


def _poly(x0: float, y0: float, x1: float, y1: float) -> list[float]:
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def _compressed_rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()}


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE: run lengths over the column-major pixels, starting with a run of zeros."""
    flat = mask.reshape(-1, order="F")
    counts, current, run = [], 0, 0
    for v in flat:
        if v == current:
            run += 1
        else:
            counts.append(run)
            current, run = v, 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": [int(c) for c in counts]}


def write_pascal_part(root: pathlib.Path) -> pathlib.Path:
    """READ init_pascal_part: COCO(`vlpart/pascal_part/train.json`), names `name.strip().split(":")`; images
    `vlpart/pascal_part/VOCdevkit/VOC2010/JPEGImages/<file_name>`."""
    jpeg_dir = root / "vlpart" / "pascal_part" / "VOCdevkit" / "VOC2010" / "JPEGImages"
    hair = np.zeros((32, 40), dtype=np.uint8)
    hair[2:6, 10:30] = 1
    leg = np.zeros((40, 32), dtype=np.uint8)
    leg[20:38, 3:7] = 1
    data = {
        "images": [
            {"id": 1, "file_name": "2008_000002.jpg", "height": 32, "width": 40},
            {"id": 2, "file_name": "2008_000003.jpg", "height": 40, "width": 32},  # stored rotated, EXIF 6
            {"id": 3, "file_name": "2008_000007.jpg", "height": 32, "width": 40},  # file missing
        ],
        "categories": [{"id": 1, "name": "person:eye"}, {"id": 2, "name": "person:hair"},
                       {"id": 3, "name": "dog:leg"}, {"id": 4, "name": " cat:tail "}],
        "annotations": [
            {"id": 11, "image_id": 1, "category_id": 1, "segmentation": [_poly(12.3, 8.1, 15.7, 11.4)]},
            {"id": 12, "image_id": 1, "category_id": 1, "segmentation": [_poly(22.0, 8.0, 25.5, 11.5)]},
            {"id": 13, "image_id": 1, "category_id": 2, "segmentation": _uncompressed_rle(hair)},
            {"id": 21, "image_id": 2, "category_id": 3, "segmentation": _compressed_rle(leg)},
            {"id": 22, "image_id": 2, "category_id": 3,
             "segmentation": [_poly(20, 20, 24, 38), [27.0, 30.0, 31.0, 30.0, 29.0, 36.0]]},  # two parts, merged
            {"id": 23, "image_id": 2, "category_id": 4, "segmentation": [[-5.0, -5.0, 50.0, -5.0, 50.0, 3.0]]},
            {"id": 31, "image_id": 3, "category_id": 1, "segmentation": [_poly(1, 1, 5, 5)]},
        ],
    }
    path = root / "vlpart" / "pascal_part" / "train.json"
    _write(path, json.dumps(data))
    _write(jpeg_dir / "2008_000002.jpg", _jpeg(32, 40, 31))
    _write(jpeg_dir / "2008_000003.jpg", _jpeg(40, 32, 32, exif_rotated=True))
    return path


def write_paco_lvis(root: pathlib.Path) -> pathlib.Path:
    """READ init_paco_lvis: COCO(`vlpart/paco/annotations/paco_lvis_v1_train.json`), names cut at "_(" and split at
    ":"; images `coco/<file_name>` (file_name "train2017/<id>.jpg")."""
    data = {
        "images": [{"id": 139, "file_name": "train2017/000000000139.jpg", "height": 36, "width": 44},
                   {"id": 285, "file_name": "train2017/000000000285.jpg", "height": 36, "width": 44}],
        "categories": [{"id": 1, "name": "trash_can"}, {"id": 2, "name": "trash_can:lid"},
                       {"id": 3, "name": "car_(automobile)"}, {"id": 4, "name": "car_(automobile):wheel_(front)"},
                       {"id": 5, "name": "mug"}],
        "annotations": [
            {"id": 501, "image_id": 139, "category_id": 1, "segmentation": [_poly(4, 4, 20, 30)]},
            {"id": 502, "image_id": 139, "category_id": 2, "segmentation": [_poly(4, 4, 20, 8.5)]},
            {"id": 503, "image_id": 139, "category_id": 4, "segmentation": [_poly(30, 25, 36, 31)]},
            {"id": 504, "image_id": 139, "category_id": 4, "segmentation": [_poly(37, 25, 42.2, 31)]},
            {"id": 505, "image_id": 139, "category_id": 77, "segmentation": [_poly(1, 1, 3, 3)]},  # unknown category
            {"id": 601, "image_id": 285, "category_id": 3, "segmentation": [_poly(2, 10, 40, 33)]},
        ],
    }
    path = root / "vlpart" / "paco" / "annotations" / "paco_lvis_v1_train.json"
    _write(path, json.dumps(data))
    for k, image in enumerate(data["images"]):
        _write(root / "coco" / image["file_name"], _jpeg(image["height"], image["width"], 40 + k))
    return path


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("semseg_raw")
    return {"root": root, "cocostuff": write_cocostuff(root), "mapillary": write_mapillary(root),
            "pascal_part": write_pascal_part(root), "paco_lvis": write_paco_lvis(root)}


def run_job(root: pathlib.Path, dataset: str, out: pathlib.Path, workers: int) -> None:
    main([f"dataset={dataset}", f"root={root}", "split=train", f"out={out}", f"num_workers={workers}",
          "shard_max_samples=1"])


@pytest.fixture(scope="module")
def outputs(local_ray, raw, tmp_path_factory) -> dict:
    """Every dataset preprocessed with 1 and 2 workers: {dataset: {workers: out dir}}."""
    base = tmp_path_factory.mktemp("semseg_out")
    outs: dict[str, dict[int, pathlib.Path]] = {}
    for dataset in ("cocostuff", "mapillary", "pascal_part", "paco_lvis"):
        for workers in (1, 2):
            out = base / f"{dataset}-w{workers}"
            run_job(raw["root"], dataset, out, workers)
            outs.setdefault(dataset, {})[workers] = out
    return outs


# ---- READ's arithmetic, transcribed (sem_seg_dataset.py, SemSegDataset.__getitem__) ----

def read_label_map_classes(label: np.ndarray, dash_values: set[int]) -> tuple[np.ndarray, list[int]]:
    """READ: `label[label == i] = ignore_label` for every "-" class i (COCO-Stuff), `np.unique(label)` minus the
    ignore label -> the class ids; each mask is `label == class_id`. Returns (remapped label, class ids)."""
    label = label.copy()
    for value in dash_values:
        label[label == value] = IGNORE
    ids = np.unique(label).tolist()
    if IGNORE in ids:
        ids.remove(IGNORE)
    return label, ids


def read_part_name(dataset: str, name: str) -> tuple[str, ...]:
    """READ's init_pascal_part / init_paco_lvis category naming."""
    pieces = name.strip().split(":")
    if dataset == "paco_lvis":
        pieces = [piece.split("_(")[0] for piece in pieces]
    return tuple(pieces)


def _sha256_of_tars(out: pathlib.Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("*.tar"))}


# ---- tests ----

@pytest.mark.parametrize("dataset", SEMSEG_COVERED)
def test_same_bytes_for_one_and_two_workers(outputs, dataset):
    one, two = outputs[dataset][1], outputs[dataset][2]
    assert _sha256_of_tars(one) == _sha256_of_tars(two) and len(_sha256_of_tars(one)) >= 2
    assert ({k: v for k, v in tree_bytes(one).items() if k != "config.yaml"}
            == {k: v for k, v in tree_bytes(two).items() if k != "config.yaml"})
    manifest, rejects, samples = read_out(one)
    assert int(manifest["queries"].sum()) == sum(s.num_queries for s in samples)
    assert list(manifest["sha256"]) == [_sha256_of_tars(one)[name] for name in manifest["shard"]]


def test_cocostuff_matches_read(outputs, raw):
    manifest, rejects, samples = read_out(outputs["cocostuff"][1])
    dash = {v for v, name in COCOSTUFF_FACTS.items() if "-" in name}
    assert {s.key for s in samples} == {"000000000009", "000000000025"}
    assert sorted(zip(rejects["key"], rejects["reason"].str.split(":").str[0], rejects["num_queries"])) == [
        ("000000000030", "no_classes", 0), ("000000000034", "unknown_class", 2)]
    source = rejects.loc[rejects["key"] == "000000000034", "source"].item()
    assert source.endswith("cocostuff/train2017/000000000034.png")
    for s in samples:
        raw_label = raw["cocostuff"][s.key]
        label, ids = read_label_map_classes(raw_label, dash)
        assert (s.height, s.width) == cv2.imread(str(raw["root"] / "coco/train2017" / f"{s.key}.jpg")).shape[:2]
        assert [(q.query_id, q.text) for q in s.queries] == [(f"{s.key}:c{v}", COCOSTUFF_FACTS[v]) for v in ids]
        for q, v in zip(s.queries, ids, strict=True):
            expected = np.where(label == IGNORE, IGNORE, label == v).astype(np.uint8)
            assert q.exists and q.query_type == "class" and np.array_equal(q.mask, expected)
        absent = s.extra["absent_classes"]
        in_map = set(np.unique(raw_label).tolist()) - {IGNORE}
        assert len(absent) == COCOSTUFF_NUM_CLASSES - len(in_map)
        assert not {COCOSTUFF_FACTS[v] for v in in_map} & set(absent)
        assert {COCOSTUFF_FACTS[v] for v in COCOSTUFF_FACTS if v not in in_map} <= set(absent)


def test_mapillary_matches_read(outputs, raw):
    manifest, rejects, samples = read_out(outputs["mapillary"][2])
    names = [label["readable"].lower() for label in MAPILLARY_LABELS]
    assert len(rejects) == 0 and [s.key for s in samples] == sorted(MAPILLARY_MAPS)
    texts = set()
    for s in samples:
        label, ids = read_label_map_classes(raw["mapillary"][s.key], set())
        assert [(q.query_id, q.text) for q in s.queries] == [(f"{s.key}:c{v}", names[v]) for v in ids]
        for q, v in zip(s.queries, ids, strict=True):
            assert np.array_equal(q.mask, (label == v).astype(np.uint8))
        assert s.extra["absent_classes"] == [n for v, n in enumerate(names) if v not in ids]
        texts |= {q.text for q in s.queries}
    assert "unlabeled" in texts and "traffic light - general (upright)" in texts


@pytest.mark.parametrize("dataset", ["pascal_part", "paco_lvis"])
def test_parts_match_read(outputs, raw, dataset):
    coco = COCO(str(raw[dataset]))
    manifest, rejects, samples = read_out(outputs[dataset][2])
    image_dir = (raw["root"] / "vlpart/pascal_part/VOCdevkit/VOC2010/JPEGImages" if dataset == "pascal_part"
                 else raw["root"] / "coco")
    names = {cat["id"]: read_part_name(dataset, cat["name"]) for cat in coco.loadCats(coco.getCatIds())}
    texts = {cid: n[0] if len(n) == 1 else f"the {n[1]} of the {n[0]}" for cid, n in names.items()}
    expected_ids, total = set(), 0
    for s in samples:
        info = next(im for im in coco.imgs.values() if pathlib.Path(im["file_name"]).stem == s.key)
        assert (s.height, s.width) == cv2.imread(str(image_dir / info["file_name"])).shape[:2]
        anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=info["id"])) if a["category_id"] in names]
        assert [q.query_id for q in s.queries] == [f"{s.key}:a{a['id']}" for a in anns]
        for q, ann in zip(s.queries, anns, strict=True):
            name = names[ann["category_id"]]
            assert q.text == texts[ann["category_id"]] and q.ann_id == ann["id"] and q.exists
            assert q.query_type == ("part" if len(name) == 2 else "class")
            assert (q.extra["object"], q.extra.get("part")) == (name[0], name[1] if len(name) == 2 else None)
            if len(name) == 2:  # one of READ's two forms, "obj part" | "the part of the obj"
                assert q.text in (f"{name[0]} {name[1]}", f"the {name[1]} of the {name[0]}")
            assert q.mask.dtype == np.uint8 and np.array_equal(q.mask, coco.annToMask(ann))
        present = {a["category_id"] for a in anns}
        # READ's neg_anns: the absent categories, a part as its [object, part] pair (both phrasings drawn later)
        assert s.extra["absent_classes"] == [list(names[c]) if len(names[c]) == 2 else names[c][0]
                                             for c in sorted(names) if c not in present]
        total += len(anns)
    if dataset == "pascal_part":
        eyes = [q for q in samples[0].queries if q.text == "the eye of the person"]
        assert len(eyes) == 2 and not np.array_equal(eyes[0].mask, eyes[1].mask)  # two eyes, two masks
        assert [(r.key, r.reason.split(":")[0], r.num_queries) for r in rejects.itertuples()] == [
            ("2008_000007", "missing_image", 1)]
        assert rejects["source"].item().endswith("JPEGImages/2008_000007.jpg")
        assert {s.key: (s.height, s.width) for s in samples}["2008_000003"] == (40, 32)  # EXIF upright
    else:
        assert [(r.key, r.reason.split(":")[0], r.num_queries) for r in rejects.itertuples()] == [
            ("annotation 505", "unknown_category", 1)]
        assert {q.text for s in samples for q in s.queries} == {"trash_can", "the lid of the trash_can",
                                                                "the wheel of the car", "car"}
    assert int(manifest["queries"].sum()) == total
    assert total + int(rejects["num_queries"].sum()) == len(coco.anns)
