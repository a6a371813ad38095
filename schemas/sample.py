"""One image with all of its queries, as stored in a WebDataset shard.

A shard sample is one IMAGE. Its tar members (WebDataset groups members by the part of the name before the first
dot, so keys never contain dots):

    <key>.image       the original image file's bytes, unchanged (JPEG or PNG; `image_format` in the metadata)
    <key>.json        UTF-8 JSON metadata: everything but the image and the masks (see `_meta_of`)
    <key>.masks.npz   lossless masks, one uint8 (H, W) array per query that has a mask, named "q<index>"

Masks use 0 background, 1 target, 255 ignore. A query whose object is absent (`exists` False) has no mask.
`decode(raw)` takes the dict that `webdataset.WebDataset(urls)` yields for one sample (member suffixes as keys,
values as bytes) and returns a `ShardSample`; `encode` is its exact inverse.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schemas import SCHEMA_VERSION

IMAGE_KEY, META_KEY, MASKS_KEY = "image", "json", "masks.npz"
"""WebDataset member suffixes, used nowhere else."""

QUERY_TYPES = ("colour", "shape", "colour+shape", "spatial", "size", "false_premise", "negative", "sentence", "class",
               "part")
"""Known `Query.query_type` values (synthetic data sets them; real data leaves None or a dataset-specific name)."""

EDIT_TYPES = ("object", "attribute", "relation")
"""Known `Query.edit` values for false-premise variants."""

_KEY_OK = re.compile(r"^[A-Za-z0-9_\-+:]+$")


def make_key(*parts: object) -> str:
    """Build a deterministic WebDataset key from parts: joined by '-', every char outside [A-Za-z0-9_-+] -> '_'.

    Dots are not allowed in WebDataset keys (the member suffix starts at the first dot), nor are slashes.
    """
    return "-".join(re.sub(r"[^A-Za-z0-9_+\-]", "_", str(p)) for p in parts)


@dataclass(kw_only=True)
class Query:
    """One referring expression / question about the image.

    Attributes:
        query_id: unique within the sample. REFER: "<ref_id>:<sent_id>", ReasonSeg: "<stem>:<index>",
            synthetic/augmented variants append ":fp<k>".
        text: the expression or question as the dataset gives it.
        is_sentence: True for long (sentence) queries -> long-query templates.
        exists: False for negatives (R-RefCOCO) and false premises (FP-RefCOCO); such a query has no mask.
        gt_sent: the true expression of a false premise (FP-RefCOCO), else None.
        mask: uint8 (H, W) in {0, 1, 255}, or None when `exists` is False.
        edit: for generated false premises, which element was rewritten (object | attribute | relation).
        query_type: optional label used to split metrics (e.g. colour, shape, spatial, false_premise).
        ann_id: the annotation the query refers to, when the dataset has one (REFER), else None.
        extra: free-form JSON-able dataset-specific fields (kept round-trip).
    """

    query_id: str
    text: str
    is_sentence: bool = False
    exists: bool = True
    gt_sent: str | None = None
    mask: np.ndarray | None = None
    edit: str | None = None
    query_type: str | None = None
    ann_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class ShardSample:
    """One image with all its queries (or, for VQA, its conversation).

    Attributes:
        key: WebDataset key (see `make_key`); unique within a dataset+split.
        dataset: dataset name as given to the preprocessing job (e.g. "refcoco", "reasonseg", "llava_vqa").
        split: split name (train, val, testA, ...).
        image_bytes: the original image file's bytes, unchanged.
        image_format: "jpeg" or "png" (what `image_bytes` holds).
        height, width: original image size in pixels; every mask is (height, width).
        queries: the referring queries (empty for VQA samples).
        conversation: VQA conversation as [{"from": "human"|"gpt", "value": str}, ...], else None.
        source: the raw file(s) the sample came from, for error messages and rejects.
        extra: free-form JSON-able fields (e.g. synthetic object list), kept round-trip.
    """

    key: str
    dataset: str
    split: str
    image_bytes: bytes
    image_format: str
    height: int
    width: int
    queries: list[Query] = field(default_factory=list)
    conversation: list[dict[str, str]] | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_queries(self) -> int:
        """Queries this sample accounts for (a VQA sample counts as one query)."""
        return len(self.queries) if self.conversation is None else max(1, len(self.queries))


def validate(sample: ShardSample) -> None:
    """Raise `ValueError` naming the sample key and the problem when the sample breaks the schema."""
    where = f"sample {sample.key!r} (dataset {sample.dataset}, split {sample.split}, source {sample.source})"
    if not sample.key or not _KEY_OK.match(sample.key):
        raise ValueError(f"{where}: key must match [A-Za-z0-9_-+:]+ (no dots); build it with schemas.sample.make_key")
    if sample.image_format not in ("jpeg", "png"):
        raise ValueError(f"{where}: image_format must be 'jpeg' or 'png', got {sample.image_format!r}")
    if sample.height <= 0 or sample.width <= 0:
        raise ValueError(f"{where}: image size must be positive, got {sample.height}x{sample.width}")
    if not sample.queries and sample.conversation is None:
        raise ValueError(f"{where}: has neither queries nor a conversation")
    ids = [q.query_id for q in sample.queries]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{where}: duplicate query ids {sorted({i for i in ids if ids.count(i) > 1})}")
    for q in sample.queries:
        if q.exists and q.mask is None:
            raise ValueError(f"{where}: query {q.query_id} exists but has no mask")
        if not q.exists and q.mask is not None:
            raise ValueError(f"{where}: query {q.query_id} has exists=False but carries a mask; drop the mask")
        if q.mask is not None:
            if q.mask.dtype != np.uint8 or q.mask.shape != (sample.height, sample.width):
                raise ValueError(
                    f"{where}: query {q.query_id} mask must be uint8 ({sample.height}, {sample.width}), "
                    f"got {q.mask.dtype} {tuple(q.mask.shape)}"
                )
        if q.edit is not None and q.edit not in EDIT_TYPES:
            raise ValueError(f"{where}: query {q.query_id} edit must be one of {EDIT_TYPES}, got {q.edit!r}")


def _meta_of(sample: ShardSample) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "key": sample.key,
        "dataset": sample.dataset,
        "split": sample.split,
        "image_format": sample.image_format,
        "height": sample.height,
        "width": sample.width,
        "source": sample.source,
        "conversation": sample.conversation,
        "extra": sample.extra,
        "queries": [
            {
                "query_id": q.query_id,
                "text": q.text,
                "is_sentence": q.is_sentence,
                "exists": q.exists,
                "gt_sent": q.gt_sent,
                "has_mask": q.mask is not None,
                "edit": q.edit,
                "query_type": q.query_type,
                "ann_id": q.ann_id,
                "extra": q.extra,
            }
            for q in sample.queries
        ],
    }


def encode(sample: ShardSample) -> dict[str, Any]:
    """ShardSample -> the dict `webdataset.TarWriter.write` takes ({"__key__", "image", "json", "masks.npz"}).

    Validates first; the bytes are deterministic for a given sample (sorted JSON keys, fixed npz member order).
    """
    validate(sample)
    out: dict[str, Any] = {
        "__key__": sample.key,
        IMAGE_KEY: sample.image_bytes,
        META_KEY: json.dumps(_meta_of(sample), sort_keys=True, ensure_ascii=False).encode("utf-8"),
    }
    masks = {f"q{i}": q.mask for i, q in enumerate(sample.queries) if q.mask is not None}
    if masks:
        out[MASKS_KEY] = _npz_bytes(masks)
    return out


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    # np.savez_compressed writes zip entries with the current time; zero it so identical input -> identical bytes.
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def check_sample_version(meta: dict[str, Any], where: str) -> None:
    """Raise ValueError (prefixed with `where`) when a sample's metadata was written under another SCHEMA_VERSION."""
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"{where}: schema_version {version!r} is not the supported {SCHEMA_VERSION}; re-run jobs.preprocess "
            "with this code version to rewrite the shards"
        )


def decode(raw: dict[str, Any]) -> ShardSample:
    """The dict WebDataset yields for one sample -> ShardSample. Raises ValueError naming the key and URL."""
    key = raw.get("__key__", "?")
    where = f"shard {raw.get('__url__', '?')}: sample {key}"
    for member in (IMAGE_KEY, META_KEY):
        if member not in raw:
            raise ValueError(f"{where}: missing member '.{member}' (members: {sorted(k for k in raw if k[0] != '_')})")
    try:
        meta = json.loads(raw[META_KEY])
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{where}: metadata JSON is unreadable: {err}") from err
    check_sample_version(meta, where)
    masks: dict[str, np.ndarray] = {}
    if MASKS_KEY in raw:
        with np.load(io.BytesIO(raw[MASKS_KEY]), allow_pickle=False) as npz:
            masks = {name: npz[name] for name in npz.files}
    queries = []
    for i, q in enumerate(meta["queries"]):
        mask = masks.get(f"q{i}")
        if q["has_mask"] and mask is None:
            raise ValueError(f"{where}: query {q['query_id']} says has_mask but masks.npz has no 'q{i}'")
        queries.append(
            Query(
                query_id=q["query_id"],
                text=q["text"],
                is_sentence=q["is_sentence"],
                exists=q["exists"],
                gt_sent=q["gt_sent"],
                mask=mask,
                edit=q["edit"],
                query_type=q["query_type"],
                ann_id=q["ann_id"],
                extra=q["extra"],
            )
        )
    return ShardSample(
        key=meta["key"],
        dataset=meta["dataset"],
        split=meta["split"],
        image_bytes=bytes(raw[IMAGE_KEY]),
        image_format=meta["image_format"],
        height=meta["height"],
        width=meta["width"],
        queries=queries,
        conversation=meta["conversation"],
        source=meta["source"],
        extra=meta["extra"],
    )
