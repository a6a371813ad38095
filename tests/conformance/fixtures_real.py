"""Builders of small raw-data trees in the REAL public layouts, from what the public loaders read.

Nothing here comes from the project (`pipelines/synth`, `pipelines/sources`): every layout is taken from the code
that reads the real files, cited at each builder (READ = github.com/rui-qian/READ, `dataloaders/`; REFER =
lichengunc/refer `refer.py`, copied in READ as `dataloaders/refer.py`; SESAME = see-say-segment/sesame).

    build_reasonseg(root, "val")   reason_seg/ReasonSeg/val/<stem>.jpg + <stem>.json
    build_refer_family(root)       refer_seg/<name>/instances.json + refs(<splitBy>).p, images under refer_seg/images/
    build_ade20k(root)             ade20k/images/training/*.jpg + ade20k/annotations/training/*.png
    build_llava(root)              llava_dataset/llava_instruct_150k.json + coco/train2017/*.jpg
    build_unsafe_refer(root, marker)  refcoco whose refs pickle calls os.system when unpickled
    build_exif_tree(root)          EXIF-rotated JPEGs for ReasonSeg and RefCOCO

Builders return small descriptions of what they planted on purpose (bad records, which refs file READ reads); the
expected values themselves are computed from the files on disk by `tests/conformance/expected.py`.
"""

from __future__ import annotations

import json
import os
import pathlib
import pickle
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from tests.conformance.py2pickle import py2_dumps

# ----------------------------------------------------------------------------------------------------------- images


def image_array(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A small BGR picture (gradients + noise) unique to the rng state, so every file's bytes differ."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx * 7 + yy * 13) % 256], axis=-1)
    return np.clip(base + rng.integers(0, 48, (h, w, 3)), 0, 255).astype(np.uint8)


def write_image(path: pathlib.Path, h: int, w: int, rng: np.random.Generator) -> None:
    """A JPEG or PNG (by suffix) of stored size h x w, written with cv2.imwrite (no EXIF)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image_array(rng, h, w)):
        raise RuntimeError(f"cv2.imwrite failed for {path}")


def write_exif_jpeg(path: pathlib.Path, stored_h: int, stored_w: int, orientation: int,
                    rng: np.random.Generator) -> None:
    """A JPEG stored stored_h x stored_w carrying EXIF Orientation=`orientation` (written with PIL)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(image_array(rng, stored_h, stored_w)[:, :, ::-1])
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, format="JPEG", quality=90, exif=exif.tobytes())


# ------------------------------------------------------------------------------------------------------ ReasonSeg
# Layout: READ `dataloaders/reason_seg_dataset.py` (glob reason_seg/ReasonSeg/<split>/*.jpg, json = jpg path with
# .json) and `dataloaders/data_processing.py::get_mask_from_json` (keys shapes[{label, points}], text, is_sentence,
# false_premise_QA; the file opened as text, re-read as cp1252 when that fails). The JSONs are LabelMe outputs:
# version, flags, imagePath, imageData, imageHeight, imageWidth may be present; SESAME's FP-Aug ReasonSeg adds
# false_premise_QA = [[question, is_sentence, answer], ...].

REASONSEG_SIZES = [(61, 97), (97, 61), (45, 70), (80, 53), (64, 64), (37, 91), (72, 48), (55, 83)]
"""(height, width) of the main ReasonSeg images (small, odd sizes)."""

_TEXTS = [
    "the object that keeps food cold", "something people sit on while waiting for a bus",
    "the animal that is most likely to chase the ball", "Where would you put a wet umbrella?", "the left cup",
    "the part of the bike that touches the ground", "what a child would climb first", "the brightest light source",
]


def _vertex(rng: np.random.Generator, v: float, limit: int) -> float | int:
    """A LabelMe-like coordinate: usually a full-precision float; sometimes an exact int, an int +- 1e-9, or a value
    in (-1, 0) or just past the border (truncation toward zero matters there)."""
    r = rng.random()
    if r < 0.08:
        return int(round(v))
    if r < 0.14:
        return float(round(v)) + float(rng.choice([-1e-9, 1e-9]))
    if r < 0.18:
        return -float(rng.uniform(0.01, 0.99))
    if r < 0.21:
        return float(limit) + float(rng.uniform(0.0, 2.5))
    return float(v)


def random_shape_points(rng: np.random.Generator, h: int, w: int, kind: str) -> list[list[float | int]]:
    """Points [[x, y], ...] of one LabelMe shape of `kind` (big, small, bowtie, dot, line)."""
    if kind == "dot":
        return [[_vertex(rng, rng.uniform(0, w), w), _vertex(rng, rng.uniform(0, h), h)]]
    if kind == "line":
        return [[_vertex(rng, rng.uniform(0, w), w), _vertex(rng, rng.uniform(0, h), h)] for _ in range(2)]
    if kind == "small":
        cx, cy = rng.uniform(1, w - 1), rng.uniform(1, h - 1)
        n = int(rng.integers(3, 5))
        return [[float(cx + rng.uniform(-2.5, 2.5)), float(cy + rng.uniform(-2.5, 2.5))] for _ in range(n)]
    cx, cy = rng.uniform(-0.1 * w, 1.1 * w), rng.uniform(-0.1 * h, 1.1 * h)
    radius = rng.uniform(0.08, 0.45) * min(h, w)
    n = int(rng.integers(3, 13))
    angles = rng.uniform(0, 2 * np.pi, n)
    if kind != "bowtie":
        angles = np.sort(angles)
    radii = radius * rng.uniform(0.35, 1.0, n)
    xs, ys = cx + radii * np.cos(angles), cy + radii * np.sin(angles)
    return [[_vertex(rng, float(x), w), _vertex(rng, float(y), h)] for x, y in zip(xs, ys)]


def _labels(rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.55:
        return str(rng.choice(["target", "target", "target_2", "flagpole"]))  # "flagpole" is not "flag": a target
    if r < 0.85:
        return str(rng.choice(["ignore", "IGNORE", "ignore_region", "Ignore"]))
    return str(rng.choice(["flag", "Flag", "FLAG"]))  # skipped, case-insensitively


def random_shapes(rng: np.random.Generator, h: int, w: int, n: int) -> list[dict[str, Any]]:
    """`n` LabelMe shapes: big/bowtie/small polygons, dots and lines, some exact duplicates with another label (equal
    areas, so READ's argsort order decides), target and ignore overlapping."""
    kinds = ["big"] * 10 + ["small"] * 4 + ["bowtie"] * 2 + ["dot", "line"]
    shapes: list[dict[str, Any]] = []
    while len(shapes) < n:
        if shapes and rng.random() < 0.12:
            twin = shapes[int(rng.integers(len(shapes)))]
            other = "ignore" if "ignore" not in twin["label"].lower() else "target"
            shapes.append({"label": other, "points": [list(p) for p in twin["points"]], "group_id": None,
                           "shape_type": "polygon", "flags": {}})
            continue
        kind = str(rng.choice(kinds))
        # READ ignores shape_type: a LabelMe "rectangle" (2 corner points) is drawn as the line between them.
        shape_type = {"dot": "point", "line": ("rectangle", "line")[len(shapes) % 2]}.get(kind, "polygon")
        shapes.append({"label": _labels(rng), "points": random_shape_points(rng, h, w, kind), "group_id": None,
                       "shape_type": shape_type, "flags": {}})
    return shapes


@dataclass(kw_only=True)
class ReasonSegTree:
    folder: pathlib.Path
    unreadable_json: list[str] = field(default_factory=list)
    """Stems whose JSON is JSON in neither UTF-8 nor cp1252 (queries cannot be counted)."""
    corrupt_image: list[str] = field(default_factory=list)
    """Stems whose JSON is fine but whose image cannot be decoded."""
    num_shapes: int = 0


def _labelme(shapes: list, texts: list[str], is_sentence: bool, *, size: tuple[int, int] | None, stem: str,
             fp_qa: list | None = None) -> dict[str, Any]:
    anno: dict[str, Any] = {"version": "4.5.6", "flags": {}, "shapes": shapes, "imagePath": f"{stem}.jpg",
                            "imageData": None, "text": texts, "is_sentence": is_sentence}
    if size is not None:
        anno["imageHeight"], anno["imageWidth"] = size
    if fp_qa is not None:
        anno["false_premise_QA"] = fp_qa
    return anno


def build_reasonseg(root: pathlib.Path, split: str = "val", seed: int = 11,
                    shapes_per_image: int = 40) -> ReasonSegTree:
    """reason_seg/ReasonSeg/<split>/: 8 images with ~40 random shapes each, a UTF-8 JSON with non-ASCII text, a cp1252
    JSON, an FP-Aug JSON with false_premise_QA, an image with only tiny (1-3 point) shapes, two JSONs that are JSON in
    neither encoding, and a valid JSON next to a corrupt image."""
    rng = np.random.default_rng(seed)
    folder = root / "reason_seg" / "ReasonSeg" / split
    folder.mkdir(parents=True, exist_ok=True)
    tree = ReasonSegTree(folder=folder)
    for i, (h, w) in enumerate(REASONSEG_SIZES):
        stem = f"{1000 + 37 * i}_{rng.integers(16**8):08x}_o"
        write_image(folder / f"{stem}.jpg", h, w, rng)
        shapes = random_shapes(rng, h, w, shapes_per_image)
        tree.num_shapes += len(shapes)
        texts = [str(t) for t in rng.choice(_TEXTS, size=int(rng.integers(1, 6)), replace=False)]
        size = (h, w) if i % 2 == 0 else None  # LabelMe records the size; not every JSON has it
        anno = _labelme(shapes, texts, bool(i % 3 == 0), size=size, stem=stem)
        if i == 1:  # UTF-8 with non-ASCII characters, written raw (not \u escapes)
            anno["text"] = ["the naïve café’s “special” chair", "Ørsted’s wind turbine"]
            (folder / f"{stem}.json").write_bytes(json.dumps(anno, ensure_ascii=False, indent=2).encode("utf-8"))
        elif i == 2:  # cp1252 (Windows-1252): invalid as UTF-8, READ re-reads it with encoding="cp1252"
            anno["text"] = ["the café’s “special” chair", "the crème brûlée — on the left"]
            (folder / f"{stem}.json").write_bytes(json.dumps(anno, ensure_ascii=False, indent=2).encode("cp1252"))
        elif i == 3:  # SESAME FP-Aug ReasonSeg
            anno["false_premise_QA"] = [
                ["Where is the purple elephant standing on the table?", True,
                 "There is no purple elephant in the image, but there is a grey cat on the table."],
                ["the flying carpet", False, "I can't find a flying carpet in this image."],
            ]
            (folder / f"{stem}.json").write_text(json.dumps(anno, indent=2))
        else:
            (folder / f"{stem}.json").write_text(json.dumps(anno, indent=2))
    # Only tiny shapes: a dot, a line (target and ignore) and a triangle; READ draws them all.
    h, w = 29, 41
    write_image(folder / "tiny_shapes.jpg", h, w, rng)
    tiny = [
        {"label": "target", "points": [[5.7, 6.2]]},
        {"label": "target", "points": [[10.2, 3.9], [30.8, 20.1]]},
        {"label": "ignore", "points": [[2.0, 25.5], [38.9, 14.0]]},
        {"label": "target", "points": [[33.3, 2.2], [39.9, 8.8], [35.1, 9.9]]},
        {"label": "flag", "points": [[0, 0], [40, 0], [40, 28], [0, 28]]},
    ]
    tree.num_shapes += len(tiny)
    (folder / "tiny_shapes.json").write_text(json.dumps(_labelme(tiny, ["the small marks"], False, size=(h, w),
                                                                 stem="tiny_shapes")))
    # JSON in neither encoding: truncated; and a 0x81 byte (undefined in cp1252) in broken JSON.
    for stem, data in (("bad_truncated", b'{"text": ["a dog"], "is_sentence": false, "shapes": [{"label": "tar'),
                       ("bad_bytes", b'{"text": ["caf\xe9 \x81"], "is_sentence": false, "shapes": [}')):
        write_image(folder / f"{stem}.jpg", 30, 30, rng)
        (folder / f"{stem}.json").write_bytes(data)
        tree.unreadable_json.append(stem)
    # A valid JSON (3 queries) whose image is not an image.
    (folder / "corrupt_image.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG " + bytes(range(256)))
    (folder / "corrupt_image.json").write_text(json.dumps(_labelme(
        [{"label": "target", "points": [[1, 1], [9, 1], [9, 9]]}], ["one", "two", "three"], False, size=None,
        stem="corrupt_image")))
    tree.corrupt_image.append("corrupt_image")
    return tree


# ------------------------------------------------------------------------------------------------------ REFER family
# Layout: REFER `refer.py` as copied in READ `dataloaders/refer.py` (DATA_DIR = refer_seg/<dataset>, refs file
# refs(<splitBy>).p loaded with pickle.load, instances.json with images/annotations/categories; createIndex reads
# ref_id, ann_id, category_id, image_id, sentences[sent_id, tokens]; IMAGE_DIR refer_seg/images/mscoco/images/
# train2014 or refer_seg/images/saiapr_tc-12 for refclef); READ `dataloaders/refer_seg_dataset.py` (determine_split_by,
# sent["sent"], gt_sent, is_false_premise / exist, decode_segmentation) and `dataloaders/test_dataset.py`.

COCO_IMAGES = [(9, (61, 97)), (25, (50, 64)), (30, (77, 45)), (34, (33, 80)), (36, (72, 72)), (42, (58, 39)),
               (49, (40, 88))]
"""(COCO image id, (height, width)); file COCO_train2014_<id:012d>.jpg, shared by every COCO-based dataset."""
CLEF_IMAGES = [(25371, "25/images/25371.jpg", (47, 71)), (1308, "01/images/1308.jpg", (66, 50)),
               (39942, "39/images/39942.jpg", (52, 52)), (8012, "08/images/8012.jpg", (35, 60))]
"""(image id, file_name relative to saiapr_tc-12/, (height, width)); RefCLEF file names hold sub-folders."""

COCO_FORMS = ("poly", "poly_multi", "poly_short_part", "crowd_rle_list_counts", "rle_single_str", "empty",
              "poly_overlap")
CLEF_FORMS = ("rle_list_str", "rle_list_list", "rle_list_mixed", "poly", "empty")

SPLITS = {"unc": ("train", "val", "testA", "testB"), "umd": ("train", "val", "test"),
          "berkeley": ("train", "val")}

REFER_LAYOUT: dict[str, dict[str, Any]] = {
    # name: refs files as (splitBy, how it is pickled, which content), the family of the sentences, the split scheme.
    # "main" is the content READ reads; "other" files differ, so reading them gives other queries.
    "refcoco": dict(files=[("unc_exclude_unified", "py2-0", "main"), ("unc", "py2-0", "other")], family="plain",
                    splits="unc", forms=COCO_FORMS),
    "refcoco+": dict(files=[("unc", "py2-2", "main")], family="plain", splits="unc", forms=COCO_FORMS),
    "refcocog": dict(files=[("umd_exclude_unified", "py3-4-numpy", "main"), ("umd", "py2-0", "other"),
                            ("google", "py2-2", "other")], family="plain", splits="umd", forms=COCO_FORMS),
    "refclef": dict(files=[("unc", "py2-0", "main"), ("berkeley", "py2-2", "other")], family="plain",
                    splits="unc", forms=CLEF_FORMS),
    "R-refcoco": dict(files=[("unc_exclude_unified", "py2-0", "main"), ("unc", "py2-2", "other")], family="R",
                      splits="unc", forms=COCO_FORMS),
    "R-refcoco+": dict(files=[("unc_exclude_unified", "py2-2", "main")], family="R", splits="unc",
                       forms=COCO_FORMS, bad_refs=True),
    "R-refcocog": dict(files=[("umd", "py2-0", "main"), ("google", "py2-2", "other")], family="R", splits="umd",
                       forms=COCO_FORMS),
    "fprefcoco": dict(files=[("berkeley_exclude_unified", "py2-2", "main"), ("unc_exclude_unified", "py2-0", "other")],
                      family="fp", splits="berkeley", forms=COCO_FORMS),
    "fprefcoco+": dict(files=[("berkeley_exclude_unified", "py2-0", "main")], family="fp", splits="berkeley",
                       forms=COCO_FORMS),
    "fprefcocog": dict(files=[("berkeley_exclude_unified", "py3-4-numpy", "main"),
                              ("umd_exclude_unified", "py2-2", "other")], family="fp", splits="berkeley",
                       forms=COCO_FORMS),
}
"""The ten REFER-family datasets: which refs files exist next to instances.json and how each was pickled."""

READ_REFS_FILE = {name: f"refs({next(s for s, _, c in spec['files'] if c == 'main')}).p"
                  for name, spec in REFER_LAYOUT.items()}
"""The refs file READ reads for each dataset in this tree (determine_split_by, with REFER's original unc/umd file as
the fallback where the *_exclude_unified file is absent: refcoco+, R-refcocog)."""

BAD_REF_IDS = {90417: 2, 90418: 1, 90419: 1, 90420: 2}
"""R-refcoco+ val: ref_id -> sentences of the malformed refs planted there."""

_PHRASES = ["man on the left", "red car", "woman in blue shirt", "the small dog near the door", "left zebra",
            "second bottle from right", "guy with glasses", "white plate", "bus in the back", "tallest tree"]


def _dump_refs(refs: list[dict[str, Any]], how: str) -> bytes:
    if how == "py2-0":
        return py2_dumps(refs, 0)
    if how == "py2-2":
        return py2_dumps(refs, 2)
    if how == "py3-4-numpy":  # re-saved by Python 3 after numpy processing: ids are np.int64, flags np.bool_
        def np_ify(obj: Any) -> Any:
            if isinstance(obj, bool):
                return np.bool_(obj)
            if isinstance(obj, int):
                return np.int64(obj)
            if isinstance(obj, list):
                return [np_ify(v) for v in obj]
            if isinstance(obj, dict):
                return {k: np_ify(v) if k not in ("sent", "raw", "split", "gt_sent", "file_name") else v
                        for k, v in obj.items()}
            return obj
        return pickle.dumps(np_ify(refs), protocol=4)
    raise ValueError(how)


def _polygon(rng: np.random.Generator, h: int, w: int, *, scale: float = 0.35) -> list[float]:
    cx, cy = rng.uniform(0.2 * w, 0.8 * w), rng.uniform(0.2 * h, 0.8 * h)
    n = int(rng.integers(4, 10))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = scale * min(h, w) * rng.uniform(0.4, 1.0, n)
    xs = np.clip(cx + radii * np.cos(angles), 0, w)
    ys = np.clip(cy + radii * np.sin(angles), 0, h)
    return [round(float(v), 2) for xy in zip(xs, ys) for v in xy]


def _random_binary(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        y0, x0 = int(rng.integers(0, h - 2)), int(rng.integers(0, w - 2))
        m[y0:y0 + int(rng.integers(2, max(3, h // 2))), x0:x0 + int(rng.integers(2, max(3, w // 2)))] = 1
    return m


def _uncompressed_counts(m: np.ndarray) -> list[int]:
    """COCO uncompressed RLE counts: run lengths of the column-major flattening, starting with a run of zeros."""
    flat = np.asfortranarray(m).reshape(-1, order="F")
    counts, current, run = [], 0, 0
    for v in flat:
        if v != current:
            counts.append(run)
            current, run = v, 0
        run += 1
    counts.append(run)
    return [int(c) for c in counts]


def _compressed(m: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(m))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def make_segmentation(rng: np.random.Generator, form: str, h: int, w: int) -> Any:
    """A COCO/REFER `segmentation` of the given form for an h x w image."""
    if form == "poly":
        return [_polygon(rng, h, w)]
    if form == "poly_multi":
        return [_polygon(rng, h, w, scale=0.2) for _ in range(int(rng.integers(2, 4)))]
    if form == "poly_overlap":  # two overlapping parts: READ's np.sum gives 2 there, the union is 1
        p = _polygon(rng, h, w)
        return [p, [round(v + 1.5, 2) for v in p]]
    if form == "poly_short_part":  # a 2-point (4-number) part that is not the first part: pycocotools decides
        return [_polygon(rng, h, w), [round(0.2 * w, 1), round(0.2 * h, 1), round(0.7 * w, 1), round(0.6 * h, 1)]]
    if form == "crowd_rle_list_counts":  # COCO iscrowd=1: ONE dict with uncompressed counts
        return {"counts": _uncompressed_counts(_random_binary(rng, h, w)), "size": [h, w]}
    if form == "rle_single_str":
        return _compressed(_random_binary(rng, h, w))
    if form == "empty":
        return []
    if form == "rle_list_str":  # RefCLEF: a LIST of compressed RLE dicts
        return [_compressed(_random_binary(rng, h, w)) for _ in range(2)]
    if form == "rle_list_list":
        return [{"size": [h, w], "counts": _uncompressed_counts(_random_binary(rng, h, w))}]
    if form == "rle_list_mixed":
        return [_compressed(_random_binary(rng, h, w)),
                {"size": [h, w], "counts": _uncompressed_counts(_random_binary(rng, h, w))}]
    raise ValueError(form)


def _bbox_area(seg: Any, h: int, w: int) -> tuple[list[float], float]:
    try:
        if isinstance(seg, dict):
            rles = [mask_utils.frPyObjects(seg, h, w) if isinstance(seg["counts"], list)
                    else {"size": seg["size"], "counts": seg["counts"].encode()}]
        elif not seg:
            return [0.0, 0.0, 0.0, 0.0], 0.0
        elif isinstance(seg[0], list):
            rles = mask_utils.frPyObjects(seg, h, w)
        else:
            rles = [mask_utils.frPyObjects(r, h, w) if isinstance(r["counts"], list)
                    else {"size": r["size"], "counts": r["counts"].encode()} for r in seg]
        merged = mask_utils.merge(rles)
        return [float(v) for v in mask_utils.toBbox(merged)], float(mask_utils.area(merged))
    except Exception:  # noqa: BLE001 - bbox/area are decoration only
        return [0.0, 0.0, 0.0, 0.0], 0.0


@dataclass(kw_only=True)
class ReferTree:
    root: pathlib.Path
    refs_read: dict[str, str]
    """Dataset name -> refs file READ reads (basename)."""
    bad_ref_ids: dict[str, dict[int, int]]
    """Dataset name -> {ref_id: number of sentences} of the malformed refs planted in its val split."""
    ann_forms: dict[str, dict[int, str]]
    """Dataset name -> {ann_id: segmentation form (see make_segmentation)}."""


def _sentence(rng: np.random.Generator, family: str, sent_id: int, k: int, variant: str) -> dict[str, Any]:
    phrase = str(rng.choice(_PHRASES))
    if variant == "other":
        phrase = f"{phrase} (other refs file)"
    if k == 1 and sent_id % 4 == 1:
        phrase = "café chair near the piñata"  # non-ASCII: a Python 2 unicode object in the pickle
    raw = phrase.capitalize() + "."  # READ uses `sent`, never `raw`
    s: dict[str, Any] = {"tokens": phrase.split(), "raw": raw, "sent_id": sent_id, "sent": phrase}
    if family == "R":
        r = sent_id % 5
        if r in (1, 3):
            s["exist"] = False
        elif r != 4:
            s["exist"] = True  # r == 4: no `exist` key at all -> exists
    elif family == "fp":
        r = sent_id % 4
        s["is_false_premise"] = r in (1, 2)
        s["gt_sent"] = phrase if r not in (1, 2) else f"{phrase} that is real"
        if r == 3:
            s["exist"] = False  # is_false_premise (False) wins over exist
    return s


def _refs_for(rng: np.random.Generator, name: str, images: list[tuple[int, str, tuple[int, int]]],
              forms: tuple[str, ...], split_names: tuple[str, ...], family: str, variant: str,
              anns: list[dict[str, Any]], add_anns: bool, forms_out: dict[int, str]) -> list[dict[str, Any]]:
    """Refs over `images` (several per image, in several splits); appends the annotations to `anns` if add_anns."""
    refs: list[dict[str, Any]] = []
    ref_id, sent_id, ann_serial = 100, 1000, 0
    n_forms = len(forms)
    for i, (image_id, file_name, (h, w)) in enumerate(images):
        plan = [("val", forms[i % n_forms]), ("train", forms[(i + 2) % n_forms])]
        if i % 2 == 0:
            plan.append(("val", forms[(i + 4) % n_forms]))
        plan.append((split_names[2 + (i % (len(split_names) - 2))] if len(split_names) > 2 else "train",
                     forms[(i + 1) % n_forms]))
        if variant == "other" and i % 2 == 1:
            plan = plan[1:]  # the other refs file has other refs in val
        for split, form in plan:
            ann_serial += 1
            crowd = form == "crowd_rle_list_counts"
            ann_id = (900100000000 if crowd else 1700000) + image_id * 1000 + ann_serial
            if add_anns:
                seg = make_segmentation(rng, form, h, w)
                bbox, area = _bbox_area(seg, h, w)
                forms_out[ann_id] = form
                anns.append({"id": ann_id, "image_id": image_id, "category_id": 1 + ann_serial % 5,
                             "segmentation": seg, "bbox": bbox, "area": area, "iscrowd": int(crowd)})
            n_sents = 1 + (ref_id + image_id) % 3
            sentences = [_sentence(rng, family, sent_id + k, k, variant) for k in range(n_sents)]
            refs.append({
                "sent_ids": [s["sent_id"] for s in sentences], "file_name": file_name.replace(".jpg", f"_{ann_id}.jpg"),
                "ann_id": ann_id, "ref_id": ref_id, "image_id": image_id, "split": split, "sentences": sentences,
                "category_id": 1 + ann_serial % 5,
            })
            ref_id += 1
            sent_id += n_sents
    return refs


def _bad_refs(image_id: int, ann_ids: list[int]) -> list[dict[str, Any]]:
    """Malformed refs (R-refcoco+ val): gRefCOCO list ann_ids, a missing key, a str ann_id."""
    def sents(first: int, n: int) -> list[dict[str, Any]]:
        return [{"tokens": ["x"], "raw": "x", "sent_id": first + k, "sent": f"bad ref sentence {first + k}"}
                for k in range(n)]
    base = {"file_name": "x.jpg", "split": "val", "category_id": 1}
    return [
        dict(base, ref_id=90417, ann_id=[ann_ids[0], ann_ids[1]], image_id=image_id, sentences=sents(9001, 2),
             sent_ids=[9001, 9002]),  # gRefCOCO: several targets
        dict(base, ref_id=90418, ann_id=[-1], image_id=image_id, sentences=sents(9003, 1), sent_ids=[9003]),
        dict(base, ref_id=90419, ann_id=ann_ids[0], sentences=sents(9004, 1), sent_ids=[9004]),  # no image_id
        dict(base, ref_id=90420, ann_id=str(ann_ids[1]), image_id=image_id, sentences=sents(9005, 2),
             sent_ids=[9005, 9006]),  # ann_id of the wrong type
    ]


def _write_instances(folder: pathlib.Path, images: list[tuple[int, str, tuple[int, int]]],
                     anns: list[dict[str, Any]], recorded: dict[int, tuple[int, int]] | None = None) -> None:
    recorded = recorded or {}
    data = {
        "info": {"description": "conformance fixture"}, "licenses": [],
        "images": [{"license": 1, "file_name": fn, "height": recorded.get(iid, hw)[0],
                    "width": recorded.get(iid, hw)[1], "id": iid} for iid, fn, hw in images],
        "annotations": anns,
        "categories": [{"supercategory": "thing", "id": k, "name": f"category {k}"} for k in range(1, 6)],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "instances.json").write_text(json.dumps(data))


def build_refer_family(root: pathlib.Path, seed: int = 23, names: tuple[str, ...] | None = None) -> ReferTree:
    """refer_seg/<name>/ for the ten REFER-family datasets (see REFER_LAYOUT) and the shared image folders."""
    rng = np.random.default_rng(seed)
    base = root / "refer_seg"
    coco_dir = base / "images" / "mscoco" / "images" / "train2014"
    coco_images = [(iid, f"COCO_train2014_{iid:012d}.jpg", hw) for iid, hw in COCO_IMAGES]
    for _, fn, (h, w) in coco_images:
        write_image(coco_dir / fn, h, w, rng)
    clef_images = list(CLEF_IMAGES)
    for _, fn, (h, w) in clef_images:
        write_image(base / "images" / "saiapr_tc-12" / fn, h, w, rng)
    bad: dict[str, dict[int, int]] = {}
    ann_forms: dict[str, dict[int, str]] = {}
    for k, (name, spec) in enumerate(REFER_LAYOUT.items()):
        if names is not None and name not in names:
            continue
        images = clef_images if name == "refclef" else coco_images[k % 2:]  # not every dataset has every image
        split_names = SPLITS[spec["splits"]]
        anns: list[dict[str, Any]] = []
        ds_rng = np.random.default_rng(seed * 100 + k)
        contents = {}
        for variant in ("main", "other"):
            refs = _refs_for(ds_rng, name, images, spec["forms"], split_names, spec["family"], variant, anns,
                             add_anns=variant == "main", forms_out=ann_forms.setdefault(name, {}))
            if variant == "other":
                refs = [r for r in refs if r["ann_id"] in {a["id"] for a in anns}]
            if variant == "main" and spec.get("bad_refs"):
                img_id = images[0][0]
                refs += _bad_refs(img_id, [a["id"] for a in anns if a["image_id"] == img_id][:2])
                bad[name] = dict(BAD_REF_IDS)
            contents[variant] = refs
        folder = base / name
        _write_instances(folder, images, anns)
        for split_by, how, variant in spec["files"]:
            (folder / f"refs({split_by}).p").write_bytes(_dump_refs(contents[variant], how))
    return ReferTree(root=root, refs_read=dict(READ_REFS_FILE), bad_ref_ids=bad, ann_forms=ann_forms)


def build_unsafe_refer(root: pathlib.Path, marker: pathlib.Path) -> None:
    """refer_seg/refcoco/ whose refs(unc_exclude_unified).p runs `touch <marker>` when unpickled by pickle.load."""

    class Exploit:
        def __reduce__(self):  # noqa: D105
            return (os.system, (f"touch {marker}",))

    rng = np.random.default_rng(5)
    base = root / "refer_seg"
    iid, (h, w) = COCO_IMAGES[0]
    fn = f"COCO_train2014_{iid:012d}.jpg"
    write_image(base / "images" / "mscoco" / "images" / "train2014" / fn, h, w, rng)
    seg = make_segmentation(rng, "poly", h, w)
    _write_instances(base / "refcoco", [(iid, fn, (h, w))],
                     [{"id": 5, "image_id": iid, "category_id": 1, "segmentation": seg, "bbox": [0, 0, 1, 1],
                       "area": 1.0, "iscrowd": 0}])
    good = {"sent_ids": [1], "file_name": fn, "ann_id": 5, "ref_id": 1, "image_id": iid, "split": "val",
            "category_id": 1, "sentences": [{"tokens": ["man"], "raw": "man", "sent_id": 1, "sent": "man"}]}
    (base / "refcoco" / "refs(unc_exclude_unified).p").write_bytes(pickle.dumps([good, Exploit()], protocol=2))


# ------------------------------------------------------------------------------------------------------------ ADE20K
# Layout: READ `dataloaders/sem_seg_dataset.py::init_ade20k` (ade20k/images/training/*.jpg, label = path with
# .jpg -> .png and images -> annotations, read with PIL; classes from `dataloaders/ade20k_classes.json`).

ADE_SIZES = [(61, 97), (48, 36), (70, 52), (33, 45)]
ADE_CLASS_VALUES = [(1, 13, 150), (3, 4, 21, 77), (2, 13, 105, 150, 149), (88,)]
"""Raw label values (class + 1) painted into each training label map, besides 0 (ignore)."""


def build_ade20k(root: pathlib.Path, seed: int = 31) -> list[str]:
    """ade20k/images/training/ADE_train_*.jpg + annotations/training/ADE_train_*.png (8-bit, values 0..150), and one
    validation image. Returns the training stems."""
    rng = np.random.default_rng(seed)
    stems = []
    for split_dir, prefix, sizes, values in (("training", "ADE_train", ADE_SIZES, ADE_CLASS_VALUES),
                                             ("validation", "ADE_val", [(40, 40)], [(5, 6)])):
        for i, ((h, w), vals) in enumerate(zip(sizes, values)):
            stem = f"{prefix}_{i + 1:08d}"
            write_image(root / "ade20k" / "images" / split_dir / f"{stem}.jpg", h, w, rng)
            label = np.zeros((h, w), dtype=np.uint8)  # 0 = "other", ignored
            for v in vals:
                for _ in range(int(rng.integers(1, 4))):
                    y0, x0 = int(rng.integers(0, h - 3)), int(rng.integers(0, w - 3))
                    label[y0:y0 + int(rng.integers(3, h // 2 + 4)), x0:x0 + int(rng.integers(3, w // 2 + 4))] = v
                if not (label == v).any():
                    label[0, 0] = v
            if i == 0:
                label[h - 1, :] = 0
            path = root / "ade20k" / "annotations" / split_dir / f"{stem}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(label, mode="L").save(path)
            if split_dir == "training":
                stems.append(stem)
    return stems


# ------------------------------------------------------------------------------------------------------------ LLaVA
# Layout: READ `dataloaders/vqa_dataset.py` (llava_dataset/<vqa_data>.json, a list of {id, image, conversations}
# with images under coco/train2017/) as in LLaVA-Instruct-150k: the image token sits before or after the first
# question, ids repeat (one image, several conversation types).

LLAVA_ITEMS = [
    {"id": "000000033471", "image": "000000033471.jpg", "conversations": [
        {"from": "human", "value": "<image>\nWhat are the colors of the bus in the image?"},
        {"from": "gpt", "value": "The bus in the image is white and red."},
        {"from": "human", "value": "What feature can be seen on the back of the bus?"},
        {"from": "gpt", "value": "The back of the bus features an advertisement."}]},
    {"id": "000000052846", "image": "000000052846.jpg", "conversations": [
        {"from": "human", "value": "Where is the cat positioned in the image?\n<image>"},
        {"from": "gpt", "value": "The cat is positioned on top of the back of the couch in the living room."}]},
    {"id": "000000033471", "image": "000000033471.jpg", "conversations": [
        {"from": "human", "value": "What do you see happening in this image?\n<image>"},
        {"from": "gpt", "value": "The scene depicts a crowded city street with a red and white bus."}]},
    {"id": "000000334872", "image": "000000334872.jpg", "conversations": [
        {"from": "gpt", "value": "Hello! Ask me about the picture."},
        {"from": "human", "value": "<image>\nAre the people in the image skiing downhill?"},
        {"from": "gpt", "value": "No, they are cross-country skiing."},
        {"from": "human", "value": "Why?"},
        {"from": "gpt", "value": "Because the terrain is flat."}]},
    {"id": "000000319154", "image": "000000319154.jpg", "conversations": [
        {"from": "human", "value": "What is the dog doing?\n<image>"},
        {"from": "gpt", "value": "The dog is lying on the café floor next to a “Welcome” mat."}]},
]
LLAVA_SIZES = {"000000033471.jpg": (61, 97), "000000052846.jpg": (50, 43), "000000334872.jpg": (39, 58),
               "000000319154.jpg": (64, 48)}


def build_llava(root: pathlib.Path, seed: int = 41, items: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """llava_dataset/llava_instruct_150k.json + coco/train2017/<image>; returns the items written."""
    rng = np.random.default_rng(seed)
    items = LLAVA_ITEMS if items is None else items
    for name, (h, w) in LLAVA_SIZES.items():
        write_image(root / "coco" / "train2017" / name, h, w, rng)
    (root / "llava_dataset").mkdir(parents=True, exist_ok=True)
    (root / "llava_dataset" / "llava_instruct_150k.json").write_text(json.dumps(items, indent=1))
    return items


# ------------------------------------------------------------------------------------------------------------- EXIF
# READ decodes every image with cv2.imread (`dataloaders/base_dataset.py::load_and_preprocess_image`,
# `reason_seg_dataset.py`), which applies the EXIF Orientation tag: a JPEG stored 60 wide x 40 high with
# Orientation=6 comes out 40 wide x 60 high.

EXIF_STORED = (40, 60)
"""(height, width) as stored in the EXIF JPEGs; with Orientation=6 they decode to 60 high x 40 wide."""


def build_exif_tree(root: pathlib.Path, seed: int = 53) -> dict[str, Any]:
    """ReasonSeg val: EXIF JPEGs whose JSON records no size / the oriented size / the stored size; refcoco val: EXIF
    JPEGs whose instances.json records the oriented size / the stored size. Returns what was planted."""
    rng = np.random.default_rng(seed)
    sh, sw = EXIF_STORED
    oh, ow = sw, sh  # oriented
    folder = root / "reason_seg" / "ReasonSeg" / "val"
    plan = {"exif_nosize": None, "exif_oriented_size": (oh, ow), "exif_stored_size": (sh, sw)}
    for stem, size in plan.items():
        write_exif_jpeg(folder / f"{stem}.jpg", sh, sw, 6, rng)
        # Polygons in the oriented frame (what LabelMe shows): a tall shape only fits the 40x60 (w x h) image.
        shapes = [{"label": "target", "points": [[3.5, 5.2], [35.7, 8.1], [30.2, 55.9], [6.6, 50.3]]},
                  {"label": "ignore", "points": [[10.1, 20.4], [20.8, 20.2], [15.5, 44.4]]}]
        (folder / f"{stem}.json").write_text(json.dumps(_labelme(shapes, [f"the tall thing in {stem}"], False,
                                                                 size=size, stem=stem)))
    write_image(folder / "upright_plain.jpg", 33, 47, rng)
    (folder / "upright_plain.json").write_text(json.dumps(_labelme(
        [{"label": "target", "points": [[2, 2], [40, 3], [30, 30]]}], ["plain"], False, size=(33, 47),
        stem="upright_plain")))

    base = root / "refer_seg"
    coco_dir = base / "images" / "mscoco" / "images" / "train2014"
    images = [(501, "COCO_train2014_000000000501.jpg", (oh, ow)),   # records the oriented size: kept
              (502, "COCO_train2014_000000000502.jpg", (sh, sw)),   # records the stored size: quarantined
              (503, "COCO_train2014_000000000503.jpg", (37, 52))]   # no EXIF, plain
    for iid, fn, _ in images[:2]:
        write_exif_jpeg(coco_dir / fn, sh, sw, 6, rng)
    write_image(coco_dir / images[2][1], 37, 52, rng)
    anns, refs = [], []
    for k, (iid, fn, (h, w)) in enumerate(images):
        seg = [[2.5, 3.5, 30.1, 4.2, 28.8, 35.3, 4.4, 33.0]]
        anns.append({"id": 7000 + k, "image_id": iid, "category_id": 1, "segmentation": seg, "bbox": [0, 0, 1, 1],
                     "area": 1.0, "iscrowd": 0})
        refs.append({"sent_ids": [80 + 2 * k, 81 + 2 * k], "file_name": fn, "ann_id": 7000 + k, "ref_id": 60 + k,
                     "image_id": iid, "split": "val", "category_id": 1,
                     "sentences": [{"tokens": ["a"], "raw": "A", "sent_id": 80 + 2 * k, "sent": f"thing {k} a"},
                                   {"tokens": ["b"], "raw": "B", "sent_id": 81 + 2 * k, "sent": f"thing {k} b"}]})
    _write_instances(base / "refcoco", images, anns)
    (base / "refcoco" / "refs(unc_exclude_unified).p").write_bytes(py2_dumps(refs, 0))
    return {"reasonseg": plan, "refcoco_images": images, "stored": (sh, sw), "oriented": (oh, ow)}
