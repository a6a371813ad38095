"""REFER-family writer: `refer_seg/<name>/instances.json` + `refs(<splitBy>).p`, named as READ reads them.

READ's `ReferSegDataset.determine_split_by` picks the refs file: refcoco, refcoco+, R-refcoco, R-refcoco+ ->
`refs(unc_exclude_unified).p`; refcocog, R-refcocog -> `refs(umd_exclude_unified).p`; fprefcoco(+/g) ->
`refs(berkeley_exclude_unified).p`; refclef -> `refs(unc).p` (see LAYOUT).

Images: the RefCOCO family shares one pool of drawn images under `refer_seg/images/mscoco/images/train2014/`
(`COCO_train2014_<12 digits>.jpg`, as RefCOCO, RefCOCO+, RefCOCOg share COCO train2014); RefCLEF has its own pool under
`refer_seg/images/saiapr_tc-12/`, with `file_name` `<dd>/images/<id>.jpg` (dd = id // 1000, two digits: the layout of
the saiapr_tc-12 image folders). Images are assigned to splits in pool order, so equal split sizes give the same
images per split everywhere.

Segmentations, all decodable by READ's `decode_segmentation` (which indexes `segmentation[0]`) and REFER's `getMask`:
RefCOCO family: a polygon list, or (an `rle_fraction` share) a one-element list of RLE dicts; RefCLEF: always a list
of RLE dicts (one part, or two disjoint parts for a MULTIPART_FRACTION share: REFER sums the parts). RLE `counts` are
compressed strings: READ's loader calls `counts.encode()` on every part and pycocotools' `decode` takes no list counts,
so an uncompressed (list) part would crash both. Never a bare RLE dict (READ raises KeyError(0) on it).

The refs pickles are written as REFER's Python-2 cPickle files are: protocol 0 or 2 (PICKLE_PROTOCOL, alternating by
dataset), strings as Python-2 byte strings, only plain containers/str/int/bool. Extra sentence keys readers may
ignore: `type` (colour | shape | colour+shape | spatial | size | negative | false_premise) and, for false premises,
`edit` (attribute | object | relation).
"""

from __future__ import annotations

import io
import json
import pickle
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from pipelines.synth.config import SynthConfig
from pipelines.synth.expressions import Expression, absent_noun, candidates, false_premise, margin_px, pick
from pipelines.synth.palette import SHAPES
from pipelines.synth.rng import rng_for
from pipelines.synth.scene import Scene, SceneObject, encode_jpeg, sample_scene

IMAGE_DIR = "refer_seg/images/mscoco/images/train2014"
"""Images of the RefCOCO family (COCO train2014)."""
CLEF_IMAGE_DIR = "refer_seg/images/saiapr_tc-12"
"""Images of RefCLEF (saiapr_tc-12); `file_name` adds `<dd>/images/<id>.jpg`."""
FIRST_IMAGE_ID = 100001
FIRST_CLEF_IMAGE_ID = 25
CLEF_ID_STEP = 137
"""RefCLEF image i has id FIRST_CLEF_IMAGE_ID + CLEF_ID_STEP * i, so the images spread over several <dd> folders."""
MULTIPART_FRACTION = 0.3
"""Share of RefCLEF annotations stored as two RLE parts (top and bottom of the object) instead of one."""

_UNC = ("train", "val", "testA", "testB")
_UMD = ("train", "val", "test")
_CLEF_UNC = ("train", "val", "testA", "testB", "testC")
LAYOUT = {
    "refcoco": ("unc_exclude_unified", _UNC), "refcoco+": ("unc_exclude_unified", _UNC),
    "refcocog": ("umd_exclude_unified", _UMD),
    "R-refcoco": ("unc_exclude_unified", _UNC), "R-refcoco+": ("unc_exclude_unified", _UNC),
    "R-refcocog": ("umd_exclude_unified", _UMD),
    "fprefcoco": ("berkeley_exclude_unified", _UNC), "fprefcoco+": ("berkeley_exclude_unified", _UNC),
    "fprefcocog": ("berkeley_exclude_unified", _UMD),
    "refclef": ("unc", _CLEF_UNC),
}
"""Dataset -> (splitBy of its refs file as READ reads it, splits). `+` variants use no position words (as RefCOCO+);
`g` variants use RefCOCOg sizes; RefCLEF's unc split has testA/testB/testC (REFER)."""
PICKLE_PROTOCOL = {name: (0, 2)[k % 2] for k, name in enumerate(LAYOUT)}
"""Dataset -> pickle protocol of its refs file: 0 and 2 alternate in LAYOUT order (refcoco 0, refcoco+ 2, ...)."""


def base_name(name: str) -> str:
    """refcoco | refcoco+ | refcocog | refclef: the REFER dataset a (R-/fp) variant builds on."""
    return "ref" + name.split("ref", 1)[1]


def pool_of(name: str) -> str:
    """"saiapr" (RefCLEF) or "mscoco" (the RefCOCO family): which image pool a dataset draws from."""
    return "saiapr" if base_name(name) == "refclef" else "mscoco"


def split_sizes(cfg: SynthConfig, name: str) -> dict[str, int]:
    """Images per split of a REFER dataset."""
    prefix = {"refcocog": "num_refcocog_", "refclef": "num_refclef_"}.get(base_name(name), "num_refcoco_")
    return {split: getattr(cfg, prefix + split) for split in LAYOUT[name][1]}


def image_file(image_id: int) -> str:
    """COCO train2014 file name of a RefCOCO-family image."""
    return f"COCO_train2014_{image_id:012d}.jpg"


def clef_image_file(image_id: int) -> str:
    """RefCLEF `file_name` (relative to saiapr_tc-12/): `<dd>/images/<id>.jpg`, dd = id // 1000 as two digits."""
    return f"{image_id // 1000:02d}/images/{image_id}.jpg"


def image_id_of(pool: str, index: int) -> int:
    """Image id of pool image `index`."""
    return FIRST_CLEF_IMAGE_ID + CLEF_ID_STEP * index if pool == "saiapr" else FIRST_IMAGE_ID + index


def pool_scene(cfg: SynthConfig, index: int, pool: str = "mscoco") -> Scene:
    """Scene `index` of an image pool ("mscoco" or "saiapr"); its masks are pycocotools rasterisations."""
    tag = "refclef-image" if pool == "saiapr" else "refer-image"
    return sample_scene(rng_for(cfg.seed, tag, index), width=cfg.width, height=cfg.height,
                        min_objects=cfg.min_objects, max_objects=cfg.max_objects, noise=cfg.noise)


def _rle(mask: np.ndarray) -> dict:
    """uint8 (H, W) mask -> RLE dict with compressed `counts` as str (pycocotools, as COCO/REFER JSON stores it)."""
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _coco_segmentation(cfg: SynthConfig, index: int, obj: SceneObject) -> list:
    """Polygon list (most annotations) or a one-element list of RLE dicts (an `rle_fraction` share)."""
    if rng_for(cfg.seed, "refer-rle", index, obj.index).random() < cfg.rle_fraction:
        return [_rle(obj.mask)]
    return [[float(v) for v in obj.polygon.reshape(-1)]]


def _clef_segmentation(cfg: SynthConfig, index: int, obj: SceneObject) -> list:
    """List of RLE dicts, as RefCLEF stores masks: the whole object, or (a MULTIPART_FRACTION share) its rows above
    and from its centre row down as two disjoint parts, which REFER's getMask sums back into the object."""
    if rng_for(cfg.seed, "refclef-parts", index, obj.index).random() < MULTIPART_FRACTION:
        cut = int(round(obj.cy))
        top = obj.mask.copy()
        top[cut:] = 0
        bottom = obj.mask - top
        if top.any() and bottom.any():
            return [_rle(top), _rle(bottom)]
    return [_rle(obj.mask)]


def coco_annotations(cfg: SynthConfig, index: int, scene: Scene, pool: str = "mscoco") -> list[dict]:
    """COCO annotations of every drawn object of pool image `index`, plus the extra key `colour` (ground truth readers
    ignore). RefCLEF ("saiapr") annotations hold RLE lists, the RefCOCO family's polygons or RLE lists."""
    image_id = image_id_of(pool, index)
    segmentation = _clef_segmentation if pool == "saiapr" else _coco_segmentation
    return [
        {"id": image_id * 10 + o.index, "image_id": image_id, "category_id": SHAPES.index(o.shape) + 1,
         "segmentation": segmentation(cfg, index, o), "area": float(o.area), "bbox": [float(v) for v in o.bbox],
         "iscrowd": 0, "colour": o.colour}
        for o in scene.objects
    ]


def _sentence(sent_id: int, text: str, kind: str, **extra: Any) -> dict:
    raw = text[0].upper() + text[1:]
    return {"sent_id": sent_id, "sent": text, "raw": raw, "tokens": text.split(), "type": kind, **extra}


def refs_for_image(cfg: SynthConfig, name: str, index: int, scene: Scene, split: str,
                   next_ids: list[int]) -> list[dict]:
    """The refs of pool image `index` for dataset `name`. `next_ids` = [next ref_id, next sent_id], advanced in
    place."""
    rng = rng_for(cfg.seed, name, "refs", index)
    margin = margin_px(scene.width, scene.height)
    pool = pool_of(name)
    image_id = image_id_of(pool, index)
    stem = str(image_id) if pool == "saiapr" else image_file(image_id)[: -len(".jpg")]
    refs = []
    for k in rng.permutation(len(scene.objects)):
        if len(refs) >= cfg.max_refs_per_image:
            break
        target = scene.objects[int(k)]
        exprs = pick(rng, candidates(target, scene.objects, margin, spatial=base_name(name) != "refcoco+"),
                     int(rng.integers(1, cfg.max_sents_per_ref + 1)), relations_first=cfg.relations_first)
        if not exprs:
            continue
        sentences = []
        for e in exprs:
            sentences += _variants(rng, name, e, scene, margin, next_ids)
        ann_id = image_id * 10 + target.index
        refs.append({"ref_id": next_ids[0], "ann_id": ann_id, "image_id": image_id,
                     "category_id": SHAPES.index(target.shape) + 1, "split": split,
                     "sent_ids": [s["sent_id"] for s in sentences],
                     "file_name": f"{stem}_{ann_id}.jpg", "sentences": sentences})
        next_ids[0] += 1
    return refs


def _variants(rng: np.random.Generator, name: str, e: Expression, scene: Scene, margin: float,
              next_ids: list[int]) -> list[dict]:
    """The sentence dicts one true expression contributes to dataset `name` (plus its negative/false premise)."""

    def new_id() -> int:
        next_ids[1] += 1
        return next_ids[1] - 1

    text = e.text()
    if name.startswith("R-"):
        out = [_sentence(new_id(), text, e.type, exist=True)]
        if rng.random() < 0.5:
            out.append(_sentence(new_id(), Expression(absent_noun(rng, scene.objects)).text(), "negative",
                                 exist=False))
        return out
    if name.startswith("fp"):
        out = [_sentence(new_id(), text, e.type, is_false_premise=False, gt_sent=text)]
        fp = false_premise(rng, e, scene.objects, margin)
        if fp is not None:
            out.append(_sentence(new_id(), fp[0].text(), "false_premise", is_false_premise=True, gt_sent=text,
                                 edit=fp[1]))
        return out
    return [_sentence(new_id(), text, e.type)]


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler: its dispatch table can be extended per type
    """Pickles as Python 2's cPickle wrote REFER's files: ASCII `str` becomes a Python-2 byte string (STRING `S'..'`
    at protocol 0, SHORT_BINSTRING/BINSTRING at protocol 2), which Python 3 loads back as `str`. Other types as
    pickle writes them at that protocol (the opcodes Python 2 used for list/dict/int/bool/None)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: str) -> None:
        if not obj.isascii():
            pickle._Pickler.save_str(self, obj)  # Python 2 would have held a unicode object: UNICODE/BINUNICODE
            return
        data = obj.encode("ascii")
        if self.proto == 0:
            self.write(pickle.STRING + repr(obj).encode("ascii") + b"\n")
        elif len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str


def py2_pickle(obj: Any, protocol: int) -> bytes:
    """`obj` (plain containers, str, int, bool, None) pickled as Python 2's cPickle with `protocol` (0 or 2)."""
    if protocol not in (0, 2):
        raise ValueError(f"REFER's pickles use protocol 0 or 2, got {protocol}")
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol).dump(obj)
    return buf.getvalue()


def _write_pool(cfg: SynthConfig, root: Path, pool: str, names: list[str],
                write_image: Callable[[int, Scene], str]) -> dict[str, dict]:
    """Write the images of one pool and the REFER datasets drawing from it. Returns {name: {split: counts}}.

    Streams over the image pool: one scene (with its full-size masks) is alive at a time.
    """
    split_of = {n: [split for split, k in split_sizes(cfg, n).items() for _ in range(k)] for n in names}
    images: dict[str, list] = {n: [] for n in names}
    anns: dict[str, list] = {n: [] for n in names}
    refs: dict[str, list] = {n: [] for n in names}
    next_ids = {n: [1, 1] for n in names}
    summary = {n: {split: {"images": 0, "refs": 0, "queries": 0} for split in LAYOUT[n][1]} for n in names}
    for i in range(max(len(s) for s in split_of.values())):
        scene = pool_scene(cfg, i, pool)
        image = {"id": image_id_of(pool, i), "file_name": write_image(i, scene), "height": scene.height,
                 "width": scene.width}
        image_anns = coco_annotations(cfg, i, scene, pool)
        for name in names:
            if i >= len(split_of[name]):
                continue
            split = split_of[name][i]
            new = refs_for_image(cfg, name, i, scene, split, next_ids[name])
            images[name].append(image)
            anns[name] += image_anns
            refs[name] += new
            counts = summary[name][split]
            counts["images"] += 1
            counts["refs"] += len(new)
            counts["queries"] += sum(len(r["sentences"]) for r in new)
    categories = [{"id": k + 1, "name": s, "supercategory": "shape"} for k, s in enumerate(SHAPES)]
    for name in names:
        folder = root / "refer_seg" / name
        folder.mkdir(parents=True, exist_ok=True)
        instances = {"info": {"description": f"synthetic {name} (pipelines.synth)"}, "images": images[name],
                     "annotations": anns[name], "categories": categories}
        (folder / "instances.json").write_text(json.dumps(instances))
        (folder / f"refs({LAYOUT[name][0]}).p").write_bytes(py2_pickle(refs[name], PICKLE_PROTOCOL[name]))
    return summary


def write_refer(cfg: SynthConfig, root: Path, names: list[str]) -> dict[str, dict]:
    """Write the requested REFER datasets and their images. Returns {name: {split: {images, refs, queries}}}."""
    names = [n for n in LAYOUT if n in names]
    summary: dict[str, dict] = {}
    coco = [n for n in names if pool_of(n) == "mscoco"]
    if coco:
        coco_dir = root / IMAGE_DIR
        coco_dir.mkdir(parents=True, exist_ok=True)

        def write_coco(i: int, scene: Scene) -> str:
            name = image_file(image_id_of("mscoco", i))
            (coco_dir / name).write_bytes(encode_jpeg(scene.image, cfg.jpeg_quality))
            return name

        summary.update(_write_pool(cfg, root, "mscoco", coco, write_coco))
    clef = [n for n in names if pool_of(n) == "saiapr"]
    if clef:

        def write_clef(i: int, scene: Scene) -> str:
            name = clef_image_file(image_id_of("saiapr", i))
            path = root / CLEF_IMAGE_DIR / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode_jpeg(scene.image, cfg.jpeg_quality))
            return name

        summary.update(_write_pool(cfg, root, "saiapr", clef, write_clef))
    return summary
