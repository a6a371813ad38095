"""REFER-family reader: RefCOCO, RefCOCO+, RefCOCOg, RefCLEF, R-RefCOCO*, FP-RefCOCO* (any `refs(<splitBy>).p`).

Layout: `<root>/refer_seg/<name>/instances.json` (COCO) + `refs(<splitBy>).p` (pickle, loaded with a restricted
unpickler), images under `<root>/refer_seg/images/mscoco/images/train2014/` (RefCLEF: `images/saiapr_tc-12/`).
One sample per IMAGE of the split; every sentence of every ref of the image is a query "<ref_id>:<sent_id>" with the
mask of the ref's annotation (polygons or RLE via pycocotools, parts unioned, clipped to 1). Existence is
`not is_false_premise` if present, else `exist`, else True; absent queries carry no mask.
"""

from __future__ import annotations

import json
import numbers
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from pipelines.sources.base import BadImageError, LoadResult, Reject, WorkUnit, estimate_bytes, read_image
from pipelines.sources.safe_pickle import UnsafePickleError, load_plain_pickle
from schemas.sample import EDIT_TYPES, Query, ShardSample, make_key

REFS_FILES = {
    "refclef": ("unc",),
    "refcocog": ("umd_exclude_unified", "umd"),
    "R-refcocog": ("umd_exclude_unified", "umd"),
    "fprefcoco": ("berkeley_exclude_unified",),
    "fprefcoco+": ("berkeley_exclude_unified",),
    "fprefcocog": ("berkeley_exclude_unified",),
}
"""splitBy candidates READ reads (`ReferSegDataset.determine_split_by`), first existing file wins; the plain
`unc`/`umd` files are REFER's original download, read when SESAME's `*_exclude_unified` files are absent."""
DEFAULT_REFS_FILES = ("unc_exclude_unified", "unc")


def default_split_by(name: str) -> tuple[str, ...]:
    """splitBy candidates for a REFER dataset name, in the order they are tried (see REFS_FILES)."""
    return REFS_FILES.get(name, DEFAULT_REFS_FILES)


def select_split(refs: list[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    """The refs of `split` as REFER's `getRefIds(split=...)` selects them: "test" is every split containing "test"
    (testA + testB for unc), "testA"/"testB"/"testC" every split containing that letter, others by equality."""
    if split == "test":
        return [r for r in refs if "test" in r["split"]]
    if split in ("testA", "testB", "testC"):
        return [r for r in refs if split[-1] in r["split"]]
    return [r for r in refs if r["split"] == split]


def decode_segmentation(segmentation: Any, height: int, width: int) -> np.ndarray:
    """COCO/REFER segmentation -> uint8 (H, W) mask in {0, 1}, decoded as READ's loader does, parts unioned.

    Accepted forms (READ's `decode_segmentation`, REFER's `getMask`):
    - a list of polygons, handed whole to pycocotools `frPyObjects` (so a short part decodes as pycocotools decodes
      it, and a first part of exactly 4 numbers is a box, as in READ);
    - a list of RLE dicts (RefCLEF), `counts` compressed (str/bytes) or uncompressed (list of ints);
    - one RLE dict (COCO crowd annotations; READ itself cannot index one, REFER's getMask can).
    An empty list gives an all-zero mask. READ sums the decoded parts into uint8 (overlapping parts give 2); the
    mask here is that sum clipped to 1, the same pixels.

    Raises:
        ValueError: "bad_polygon: ..." (non-numeric coordinates), "bad_rle: ..." (malformed RLE or a size that is not
            (height, width)) or "bad_segmentation: ..." (neither form).
    """
    if isinstance(segmentation, dict):
        segmentation = [segmentation]
    if not isinstance(segmentation, (list, tuple)):
        raise ValueError(f"bad_segmentation: expected a polygon list or RLE dict(s), got {type(segmentation).__name__}")
    if not segmentation:
        return np.zeros((height, width), dtype=np.uint8)
    if all(isinstance(part, dict) for part in segmentation):
        decoded = _decode_rles(list(segmentation), height, width)
    elif all(isinstance(part, (list, tuple)) for part in segmentation):
        decoded = _decode_polygons(list(segmentation), height, width)
    else:
        kinds = sorted({type(part).__name__ for part in segmentation})
        raise ValueError(f"bad_segmentation: parts must be all polygons (lists) or all RLE dicts, got {kinds}")
    return (decoded.reshape(height, width, -1).sum(axis=2, dtype=np.int64) > 0).astype(np.uint8)


def _decode_polygons(parts: list, height: int, width: int) -> np.ndarray:
    """Polygon parts -> uint8 (H, W, parts) through pycocotools, as READ calls it."""
    for k, part in enumerate(parts):
        if not part or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in part):
            raise ValueError(f"bad_polygon: part {k} is not a non-empty flat list of numbers")
    try:
        return mask_utils.decode(mask_utils.frPyObjects([[float(v) for v in part] for part in parts], height, width))
    except Exception as err:  # pycocotools raises a bare Exception ("input type is not supported") for 2-number parts
        raise ValueError(f"bad_polygon: pycocotools cannot decode the polygons ({type(err).__name__}: {err})") from err


def _decode_rles(rles: list[dict[str, Any]], height: int, width: int) -> np.ndarray:
    """RLE dicts -> uint8 (H, W, parts); uncompressed (list) counts go through `frPyObjects` first."""
    compressed = []
    for k, rle in enumerate(rles):
        size, counts = rle.get("size"), rle.get("counts")
        try:
            same_size = [int(v) for v in size] == [height, width]
        except (TypeError, ValueError):
            same_size = False
        if not same_size:
            raise ValueError(f"bad_rle: part {k} has size {size}, not the image size [{height}, {width}]")
        try:
            if isinstance(counts, list):
                compressed.append(mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width))
            elif isinstance(counts, (str, bytes)):
                compressed.append({"size": [height, width],
                                   "counts": counts.encode() if isinstance(counts, str) else counts})
            else:
                raise ValueError(f"counts must be a list, str or bytes, got {type(counts).__name__}")
        except (ValueError, TypeError, OverflowError) as err:
            raise ValueError(f"bad_rle: part {k}: {err}") from err
    try:
        return mask_utils.decode(compressed)
    except (ValueError, TypeError, OverflowError) as err:
        raise ValueError(f"bad_rle: pycocotools cannot decode the RLE ({type(err).__name__}: {err})") from err


def sentence_exists(sent: dict[str, Any]) -> bool:
    """Existence rule: not is_false_premise if present, else exist, else True."""
    if "is_false_premise" in sent:
        return not bool(sent["is_false_premise"])
    if "exist" in sent:
        return bool(sent["exist"])
    return True


@dataclass(kw_only=True)
class ReferSource:
    """Reads one REFER-family dataset split.

    Attributes:
        dataset: dataset name (also the folder under refer_seg/, e.g. "refcoco+", "R-refcocog", "fprefcoco").
        root: raw data root holding refer_seg/.
        split: ref split (train, val, testA, testB, test).
        split_by: refs file variant, "" -> default_split_by(dataset) (unc, umd, berkeley, ...).
    """

    dataset: str
    root: str
    split: str
    split_by: str = ""
    _refs: list[Any] | None = field(default=None, init=False, repr=False, compare=False)
    """The loaded refs, kept between `check()` and `index()` on the driver (never shipped to workers)."""

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_refs"} | {"_refs": None}

    @property
    def folder(self) -> str:
        return os.path.join(self.root, "refer_seg", self.dataset)

    @property
    def image_dir(self) -> str:
        sub = "saiapr_tc-12" if self.dataset.endswith("refclef") else os.path.join("mscoco", "images", "train2014")
        return os.path.join(self.root, "refer_seg", "images", sub)

    def refs_path(self) -> str:
        """The refs pickle to read; raises ValueError naming `split_by` and the files that exist."""
        if not os.path.isdir(self.folder):
            raise ValueError(
                f"root: REFER folder {self.folder} does not exist; point root= at the folder holding "
                f"refer_seg/{self.dataset}/"
            )
        candidates = (self.split_by,) if self.split_by else default_split_by(self.dataset)
        for split_by in candidates:
            path = os.path.join(self.folder, f"refs({split_by}).p")
            if os.path.exists(path):
                return path
        found = sorted(n for n in os.listdir(self.folder) if n.startswith("refs(") and n.endswith(").p"))
        raise ValueError(
            f"split_by: no refs({'|'.join(candidates)}).p in {self.folder}; found {found}; set split_by= to one of "
            f"{[n[5:-3] for n in found]}"
        )

    def check(self) -> None:
        """Raise ValueError when the refs file is missing or no ref is in `split` (naming the file's splits)."""
        refs_path = self.refs_path()
        refs = self._load_refs(refs_path)
        if isinstance(refs, Reject):
            return  # index() quarantines the unreadable file
        splits = sorted({r["split"] for r in refs if isinstance(r, dict) and isinstance(r.get("split"), str)})
        if not select_split([{"split": name} for name in splits], self.split):
            raise ValueError(f"split: {refs_path} has no ref in split {self.split!r}; its splits are {splits} "
                             "(test = every split containing 'test', as REFER's getRefIds)")

    def _load_refs(self, refs_path: str) -> list[Any] | Reject:
        """The refs list (cached), or the Reject that quarantines an unreadable or unsafe file."""
        if self._refs is not None:
            return self._refs
        try:
            with open(refs_path, "rb") as f:
                refs = load_plain_pickle(f.read(), name=refs_path)
            if not isinstance(refs, list):
                raise ValueError(f"{refs_path}: expected a list of refs, got {type(refs).__name__}")
        except (OSError, ValueError) as err:
            code = "unsafe_pickle" if isinstance(err, UnsafePickleError) else "bad_refs"
            return Reject(source=refs_path, key=os.path.basename(refs_path), num_queries=0,
                          reason=f"{code}: {err} (its queries cannot be counted)")
        self._refs = refs
        return refs

    def index(self) -> tuple[list[WorkUnit], list[Reject]]:
        refs_path = self.refs_path()
        refs = self._load_refs(refs_path)
        if isinstance(refs, Reject):
            return [], [refs]

        rejects: list[Reject] = []
        split_refs = []
        for i, ref in enumerate(refs):
            split = ref.get("split") if isinstance(ref, dict) else None
            if isinstance(split, str) and not select_split([ref], self.split):
                continue  # another split's ref, good or bad, is not this job's business
            problem = _ref_problem(ref)
            if problem:
                n = len(ref["sentences"]) if isinstance(ref, dict) and isinstance(ref.get("sentences"), list) else 0
                key = f"ref {ref['ref_id']}" if isinstance(ref, dict) and "ref_id" in ref else f"ref#{i}"
                rejects.append(Reject(source=refs_path, key=key, num_queries=n, reason=f"bad_ref: {problem}"))
            else:
                split_refs.append(_plain_ref(ref))

        instances_path = os.path.join(self.folder, "instances.json")
        try:
            images, anns = _read_instances(instances_path)
        except (OSError, ValueError) as err:
            total = sum(len(r["sentences"]) for r in split_refs)
            rejects.append(Reject(source=instances_path, key="instances.json", num_queries=total,
                                  reason=f"bad_instances: {err}"))
            return [], rejects

        by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for ref in split_refs:
            n = len(ref["sentences"])
            where = f"ref {ref['ref_id']}"
            if ref["image_id"] not in images:
                rejects.append(Reject(source=refs_path, key=where, num_queries=n,
                                      reason=f"unknown_image_id: {where} points to image {ref['image_id']} "
                                             "absent from instances.json"))
                continue
            ann = anns.get(ref["ann_id"])
            if ann is None:
                rejects.append(Reject(source=refs_path, key=where, num_queries=n,
                                      reason=f"unknown_ann_id: {where} points to annotation {ref['ann_id']} "
                                             "absent from instances.json"))
                continue
            by_image[ref["image_id"]].append({
                "ref_id": ref["ref_id"],
                "ann_id": ref["ann_id"],
                "segmentation": ann.get("segmentation", []),
                "sentences": [_sentence_payload(s) for s in ref["sentences"]],
            })

        units = []
        for image_id, image_refs in by_image.items():
            info = images[image_id]
            path = os.path.join(self.image_dir, info["file_name"])
            image_refs.sort(key=lambda r: r["ref_id"])
            num_queries = sum(len(r["sentences"]) for r in image_refs)
            try:
                file_bytes = os.path.getsize(path)
            except OSError:
                file_bytes = 0  # load() rejects it with the precise reason
            units.append(WorkUnit(
                key=make_key(os.path.splitext(os.path.basename(info["file_name"]))[0]),
                source=path,
                num_queries=num_queries,
                est_bytes=estimate_bytes(file_bytes, info["height"], info["width"], num_queries),
                payload={"image": path, "image_id": image_id, "height": info["height"], "width": info["width"],
                         "refs": image_refs},
            ))
        units.sort(key=lambda u: u.key)
        return units, rejects

    def load(self, unit: WorkUnit) -> LoadResult:
        p = unit.payload
        try:
            data, fmt, height, width = read_image(p["image"], recorded=(p["height"], p["width"]),
                                                  recorded_by="instances.json")
        except BadImageError as err:
            return LoadResult(rejects=[Reject(source=p["image"], key=unit.key, num_queries=unit.num_queries or 0,
                                              reason=str(err))])
        queries, rejects = [], []
        for ref in p["refs"]:
            try:
                mask = decode_segmentation(ref["segmentation"], height, width)
            except ValueError as err:
                rejects.append(Reject(source=p["image"], key=f"{unit.key}:ref{ref['ref_id']}",
                                      num_queries=len(ref["sentences"]),
                                      reason=f"{err} (annotation {ref['ann_id']} of ref {ref['ref_id']})"))
                continue
            for s in ref["sentences"]:
                queries.append(Query(
                    query_id=f"{ref['ref_id']}:{s['sent_id']}", text=s["sent"], is_sentence=False, exists=s["exists"],
                    gt_sent=s["gt_sent"], mask=mask if s["exists"] else None, edit=s["edit"],
                    query_type=s["type"], ann_id=ref["ann_id"]))
        if not queries:
            return LoadResult(rejects=rejects)
        sample = ShardSample(key=unit.key, dataset=self.dataset, split=self.split, image_bytes=data, image_format=fmt,
                             height=height, width=width, queries=queries, source=p["image"],
                             extra={"image_id": p["image_id"]})
        return LoadResult(sample=sample, rejects=rejects)


def is_integer_id(value: Any) -> bool:
    """An integer id, Python's or numpy's (REFER pickles re-saved by Python 3 may hold numpy scalars)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _ref_problem(ref: Any) -> str:
    """Why a ref record is malformed ("" when it is fine); the message names the ref_id and the fix."""
    if not isinstance(ref, dict):
        return f"expected a dict, got {type(ref).__name__}"
    missing = [name for name in ("ref_id", "ann_id", "image_id", "split", "sentences") if name not in ref]
    if missing:
        return f"ref {ref.get('ref_id', '?')} has no {missing}"
    if isinstance(ref["ann_id"], (list, tuple)):
        return (f"ref {ref['ref_id']} has a list ann_id {list(ref['ann_id'])}: that is the gRefCOCO layout (several or "
                "no targets per expression), which REFER-family readers do not define; point root= at the dataset's "
                "own refs files")
    for name in ("ref_id", "ann_id", "image_id"):
        if not is_integer_id(ref[name]):
            return f"ref {ref['ref_id']}: {name} must be an integer, got {type(ref[name]).__name__} {ref[name]!r}"
    if not isinstance(ref["sentences"], list):
        return f"ref {ref['ref_id']}: 'sentences' is not a list"
    for s in ref["sentences"]:
        text = s.get("sent", s.get("raw")) if isinstance(s, dict) else None
        if not isinstance(s, dict) or not is_integer_id(s.get("sent_id")) or not isinstance(text, str):
            return f"ref {ref['ref_id']}: a sentence lacks an integer sent_id or its sent text"
    return ""


def _plain_ref(ref: dict[str, Any]) -> dict[str, Any]:
    """A valid ref with its ids as Python ints (numpy scalars do not survive the JSON work-unit payload)."""
    out = dict(ref, ref_id=int(ref["ref_id"]), ann_id=int(ref["ann_id"]), image_id=int(ref["image_id"]))
    out["sentences"] = [dict(s, sent_id=int(s["sent_id"])) for s in ref["sentences"]]
    return out


def _sentence_payload(s: dict[str, Any]) -> dict[str, Any]:
    edit = s.get("edit")
    qtype = s.get("type", s.get("query_type"))
    gt_sent = s.get("gt_sent")
    return {
        "sent_id": s["sent_id"],
        "sent": s.get("sent", s.get("raw")),
        "exists": sentence_exists(s),
        "gt_sent": gt_sent if isinstance(gt_sent, str) else None,
        "edit": edit if edit in EDIT_TYPES else None,
        "type": qtype if isinstance(qtype, str) else None,
    }


def _read_instances(path: str) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    """instances.json -> (images by id, annotations by id). Raises ValueError naming the file on bad content."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations")):
        raise ValueError(f"{path} must be a COCO object with 'images' and 'annotations' lists")
    try:
        images = {
            im["id"]: {"file_name": im["file_name"], "height": int(im["height"]), "width": int(im["width"])}
            for im in data["images"]
        }
        anns = {a["id"]: a for a in data["annotations"]}
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: an image or annotation record is malformed ({type(err).__name__}: {err})") from err
    return images, anns
