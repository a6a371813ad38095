"""Expected job output, computed independently from the raw files the way READ's loaders read them.

Nothing here imports the project's readers or generator. The tools are the ones READ uses: `cv2.imread` for
images, OpenCV `polylines` + `fillPoly` for ReasonSeg polygons (READ `dataloaders/data_processing.py`),
pycocotools `frPyObjects` + `decode` for REFER segmentations (REFER `refer.py::getMask`, READ
`dataloaders/refer_seg_dataset.py::decode_segmentation`), READ's label arithmetic for ADE20K
(`dataloaders/sem_seg_dataset.py`) and READ's `preprocess_multimodal` rule for LLaVA (`dataloaders/vqa_dataset.py`).

Where the project's contract adds to READ (READ crashes or misaligns), the expectation follows the contract and says
so: quarantine for unreadable JSON, undecodable images, size mismatches, malformed refs; masks clipped to 0/1 where
READ's `np.sum` over polygon parts gives 2 on overlaps.
"""

from __future__ import annotations

import copy
import hashlib
import json
import pathlib
import pickle
import re
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

ADE20K_CLASSES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path",
    "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase",
    "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm",
    "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light",
    "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver", "airplane",
    "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster",
    "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool",
    "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
    "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture",
    "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor",
    "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)
"""READ `dataloaders/ade20k_classes.json` (the 150 SceneParse150 names, index = class id = label - 1)."""

SKIP = object()
"""An expected field that is not checked."""


@dataclass(kw_only=True)
class ExpQuery:
    query_id: str
    text: str
    exists: bool
    mask: np.ndarray | None
    gt_sent: Any = SKIP
    is_sentence: Any = SKIP


@dataclass(kw_only=True)
class ExpSample:
    image_path: pathlib.Path
    image_bytes: bytes
    height: int
    width: int
    queries: dict[str, ExpQuery] | None = None
    conversation: list[dict[str, str]] | None = None

    @property
    def match_key(self) -> str:
        return sample_match_key(self.image_bytes, self.conversation)


@dataclass(kw_only=True)
class ExpReject:
    what: str
    """Human description for messages."""
    patterns: list[str]
    """Regexes that must ALL be found in "<key> | <source> | <reason>" of the reject row."""
    num_queries: int


@dataclass(kw_only=True)
class ExpectedRun:
    samples: list[ExpSample] = field(default_factory=list)
    rejects: list[ExpReject] = field(default_factory=list)
    input_queries: int | None = 0


def sample_match_key(image_bytes: bytes, conversation: list[dict[str, str]] | None) -> str:
    digest = hashlib.sha256(image_bytes).hexdigest()
    return digest if conversation is None else digest + json.dumps(conversation, sort_keys=True)


def word(text: str) -> str:
    """Regex: `text` not glued to letters/digits on either side."""
    return rf"(?<![A-Za-z0-9]){re.escape(str(text))}(?![A-Za-z0-9])"


def sizes_named(h: int, w: int) -> str:
    """Regex: a size h, w written as 'HxW', 'H x W', '(H, W)', '[H, W]', 'H by W' or 'H*W'."""
    return rf"(?<!\d){h}\s*(?:x|×|,|by|\*)\s*{w}(?!\d)"


# ------------------------------------------------------------------------------------------------------------ images


def cv2_decode(path: pathlib.Path) -> np.ndarray | None:
    """The image as READ decodes it: cv2.imread (EXIF orientation applied), None when it cannot be decoded."""
    return cv2.imread(str(path))


# --------------------------------------------------------------------------------------------------------- ReasonSeg


def read_reasonseg_json(path: pathlib.Path) -> Any | None:
    """READ's read: the text as UTF-8 (the locale default), on any failure again as cp1252; None if both fail."""
    data = path.read_bytes()
    for encoding in ("utf-8", "cp1252"):
        try:
            return json.loads(data.decode(encoding))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
    return None


def reasonseg_mask(shapes: list[dict[str, Any]], height: int, width: int) -> np.ndarray:
    """READ `get_mask_from_json`: skip `flag` labels (case-insensitive), measure each shape's area by drawing it on a
    scratch mask, paint in `np.argsort(areas)[::-1]` order; 255 for labels containing `ignore`, else 1."""
    areas, kept = [], []
    for shape in shapes:
        if shape["label"].lower() == "flag":
            continue
        pts = np.array([shape["points"]], dtype=np.int32)
        scratch = np.zeros((height, width), dtype=np.uint8)
        cv2.polylines(scratch, pts, True, 1, 1)
        cv2.fillPoly(scratch, pts, 1)
        areas.append(scratch.sum())  # a numpy uint64, as in READ's list
        kept.append(shape)
    out = np.zeros((height, width), dtype=np.uint8)
    for idx in np.argsort(areas)[::-1].astype(np.int32):
        shape = kept[int(idx)]
        value = 255 if "ignore" in shape["label"].lower() else 1
        pts = np.array([shape["points"]], dtype=np.int32)
        cv2.polylines(out, pts, True, value, 1)
        cv2.fillPoly(out, pts, value)
    return out


def expected_reasonseg(root: pathlib.Path, split: str) -> ExpectedRun:
    """Every <stem>.jpg of reason_seg/ReasonSeg/<split>/ (READ globs *.jpg) with its <stem>.json."""
    run = ExpectedRun()
    folder = root / "reason_seg" / "ReasonSeg" / split
    for jpg in sorted(folder.glob("*.jpg")):
        stem = jpg.stem
        anno = read_reasonseg_json(jpg.with_suffix(".json"))
        if anno is None:
            run.rejects.append(ExpReject(what=f"unreadable JSON {stem}", patterns=[word(stem)], num_queries=0))
            continue
        texts = anno["text"]
        fp_qa = anno.get("false_premise_QA") or []
        n = len(texts) + len(fp_qa)
        run.input_queries += n
        img = cv2_decode(jpg)
        if img is None:
            run.rejects.append(ExpReject(what=f"undecodable image {stem}", patterns=[word(stem)], num_queries=n))
            continue
        h, w = img.shape[:2]
        recorded = (anno.get("imageHeight"), anno.get("imageWidth"))
        if None not in recorded and tuple(recorded) != (h, w):
            run.rejects.append(ExpReject(what=f"size mismatch {stem}", num_queries=n,
                                         patterns=[word(stem), sizes_named(h, w), sizes_named(*recorded)]))
            continue
        m = reasonseg_mask(anno["shapes"], h, w)
        queries = {}
        for i, text in enumerate(texts):
            qid = f"{stem}:{i}"
            queries[qid] = ExpQuery(query_id=qid, text=text, exists=True, mask=m,
                                    is_sentence=bool(anno["is_sentence"]))
        for k, (question, is_sentence, _answer) in enumerate(fp_qa):
            qid = f"{stem}:fp{k}"
            queries[qid] = ExpQuery(query_id=qid, text=question, exists=False, mask=None,
                                    is_sentence=bool(is_sentence))
        run.samples.append(ExpSample(image_path=jpg, image_bytes=jpg.read_bytes(), height=h, width=w,
                                     queries=queries))
    return run


# ------------------------------------------------------------------------------------------------------------- REFER


def refer_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """REFER getMask / READ decode_segmentation through pycocotools, the parts' sum > 0 as uint8 0/1.

    Polygon lists go whole to `frPyObjects` (pycocotools decides what a short part is); RLE dicts with list counts
    are uncompressed RLE (`frPyObjects` on the dict), with str counts compressed RLE; one dict = one part; [] = zeros.
    """
    if isinstance(segmentation, dict):
        parts: list[Any] = [segmentation]
    else:
        parts = list(segmentation)
    if not parts:
        return np.zeros((height, width), dtype=np.uint8)
    if isinstance(parts[0], list):
        rles = mask_utils.frPyObjects(parts, height, width)
    else:
        rles = []
        for p in parts:
            if isinstance(p["counts"], list):
                rles.append(mask_utils.frPyObjects(p, height, width))
            else:
                counts = p["counts"].encode() if isinstance(p["counts"], str) else p["counts"]
                rles.append({"size": list(p["size"]), "counts": counts})
    decoded = mask_utils.decode(rles)
    if decoded.ndim == 2:
        decoded = decoded[:, :, None]
    return (decoded.astype(np.int64).sum(axis=2) > 0).astype(np.uint8)


def refer_split_refs(refs: list[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    """REFER `getRefIds(split=...)`: testA/B/C by letter, test = every split containing 'test', else equality."""
    if split in ("testA", "testB", "testC"):
        return [r for r in refs if split[-1] in r["split"]]
    if split == "test":
        return [r for r in refs if "test" in r["split"]]
    return [r for r in refs if r["split"] == split]


def refer_exists(sent: dict[str, Any]) -> bool:
    """READ process_referring_expressions: not is_false_premise if present, else exist, else True."""
    if "is_false_premise" in sent:
        return not bool(sent["is_false_premise"])
    if "exist" in sent:
        return bool(sent["exist"])
    return True


def expected_refer(root: pathlib.Path, name: str, split: str, refs_file: str,
                   bad_ref_ids: dict[int, int] | None = None) -> ExpectedRun:
    """READ's TestReferDataset over refer_seg/<name>/<refs_file> + instances.json, one sample per image.

    `bad_ref_ids` are the refs planted malformed (READ would crash on them): each is one reject naming its ref_id.
    """
    bad_ref_ids = bad_ref_ids or {}
    folder = root / "refer_seg" / name
    refs = pickle.loads((folder / refs_file).read_bytes())  # REFER: pickle.load (a trusted fixture file)
    instances = json.loads((folder / "instances.json").read_text())
    imgs = {im["id"]: im for im in instances["images"]}
    anns = {a["id"]: a for a in instances["annotations"]}
    image_dir = root / "refer_seg" / "images" / (
        "saiapr_tc-12" if name == "refclef" else "mscoco/images/train2014")
    run = ExpectedRun()
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ref in refer_split_refs(refs, split):
        n = len(ref["sentences"]) if isinstance(ref.get("sentences"), list) else 0
        run.input_queries += n
        rid = int(ref["ref_id"])
        if rid in bad_ref_ids:
            run.rejects.append(ExpReject(what=f"malformed ref {rid}", patterns=[word(rid)], num_queries=n))
            continue
        by_image.setdefault(int(ref["image_id"]), []).append(ref)
    for image_id, image_refs in by_image.items():
        info = imgs[image_id]
        path = image_dir / info["file_name"]
        n = sum(len(r["sentences"]) for r in image_refs)
        img = cv2_decode(path)
        if img is None:
            run.rejects.append(ExpReject(what=f"undecodable image {path.name}", patterns=[word(path.stem)],
                                         num_queries=n))
            continue
        h, w = img.shape[:2]
        if (info["height"], info["width"]) != (h, w):
            run.rejects.append(ExpReject(what=f"size mismatch {path.name}", num_queries=n,
                                         patterns=[sizes_named(h, w), sizes_named(info["height"], info["width"])]))
            continue
        queries = {}
        for ref in image_refs:
            seg = anns[ref["ann_id"]]["segmentation"]
            m = refer_mask(seg, h, w)
            for sent in ref["sentences"]:
                qid = f"{int(ref['ref_id'])}:{int(sent['sent_id'])}"
                exists = refer_exists(sent)
                queries[qid] = ExpQuery(query_id=qid, text=sent["sent"], exists=exists, mask=m if exists else None,
                                        gt_sent=sent.get("gt_sent"))
        run.samples.append(ExpSample(image_path=path, image_bytes=path.read_bytes(), height=h, width=w,
                                     queries=queries))
    return run


def refs_file_read_by_read(folder: pathlib.Path, name: str) -> str:
    """READ `determine_split_by`, with REFER's original unc/umd download as the fallback the contract adds."""
    if name == "refclef":
        candidates = ["unc"]
    elif name in ("refcocog", "R-refcocog"):
        candidates = ["umd_exclude_unified", "umd"]
    elif name in ("fprefcoco", "fprefcoco+", "fprefcocog"):
        candidates = ["berkeley_exclude_unified"]
    else:
        candidates = ["unc_exclude_unified", "unc"]
    for split_by in candidates:
        if (folder / f"refs({split_by}).p").exists():
            return f"refs({split_by}).p"
    raise FileNotFoundError(f"no refs file for {name} in {folder}")


# ------------------------------------------------------------------------------------------------------------ ADE20K


def expected_ade20k(root: pathlib.Path, split_dir: str = "training") -> ExpectedRun:
    """READ init_ade20k + SemSegDataset: label 0 -> 255, minus 1, 254 -> 255; one query per present class."""
    run = ExpectedRun()
    image_dir = root / "ade20k" / "images" / split_dir
    for jpg in sorted(p for p in image_dir.iterdir() if p.name.endswith(".jpg")):
        label_path = root / "ade20k" / "annotations" / split_dir / (jpg.name[:-4] + ".png")
        raw = np.array(Image.open(label_path))
        label = raw.copy()
        label[label == 0] = 255
        label -= 1
        label[label == 254] = 255
        classes = [int(c) for c in np.unique(label) if c != 255]
        run.input_queries += len(classes)
        img = cv2_decode(jpg)
        h, w = img.shape[:2]
        queries = {}
        for c in classes:
            m = (label == c).astype(np.uint8)
            m[label == 255] = 255
            qid = f"{jpg.stem}:c{c}"
            queries[qid] = ExpQuery(query_id=qid, text=ADE20K_CLASSES[c], exists=True, mask=m)
        run.samples.append(ExpSample(image_path=jpg, image_bytes=jpg.read_bytes(), height=h, width=w,
                                     queries=queries))
    return run


# ------------------------------------------------------------------------------------------------------------- LLaVA

IMAGE_TOKEN = "<image>"


def read_conversation(turns: list[dict[str, str]]) -> list[dict[str, str]]:
    """READ VQADataset: preprocess_multimodal (a turn holding <image>: token removed, stripped, "<image>\\n" put in
    front, stripped; other turns untouched), then a first turn not from the human dropped."""
    source = copy.deepcopy(turns)
    for sentence in source:
        if IMAGE_TOKEN in sentence["value"]:
            value = sentence["value"].replace(IMAGE_TOKEN, "").strip()
            sentence["value"] = (IMAGE_TOKEN + "\n" + value).strip()
    if source[0]["from"] != "human":
        source = source[1:]
    return [{"from": s["from"], "value": s["value"]} for s in source]


def expected_llava(root: pathlib.Path) -> ExpectedRun:
    run = ExpectedRun()
    items = json.loads((root / "llava_dataset" / "llava_instruct_150k.json").read_text(encoding="utf-8"))
    for item in items:
        run.input_queries += 1
        path = root / "coco" / "train2017" / item["image"]
        img = cv2_decode(path)
        h, w = img.shape[:2]
        run.samples.append(ExpSample(image_path=path, image_bytes=path.read_bytes(), height=h, width=w,
                                     conversation=read_conversation(item["conversations"])))
    return run
