"""Export augmented samples as a REFER-format dataset in the FP-RefCOCO layout.

    <out_root>/refer_seg/<name>/refs(<split_by>).p     plain-container pickle, list of refs
    <out_root>/refer_seg/<name>/instances.json         the exported images, all their annotations, all categories
    <out_root>/refer_seg/images/mscoco/images/train2014/<file_name>   the original image bytes (RefCLEF: saiapr_tc-12)

Every sentence carries `is_false_premise` and `gt_sent` (a true sentence's gt_sent is itself), plus `edit`, `type`
and `verified` (the annotations show it describes no object) for generated false premises;
pipelines.sources.refer (jobs.preprocess dataset=<name>) reads it back.
True sentences keep their ref and sent ids; generated ones get new sent ids after the largest exported one.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pipelines import storage
from pipelines.augment.context import CocoIndex
from pipelines.sources.refer import ReferSource
from schemas.sample import Query, ShardSample


@dataclass(kw_only=True)
class ExportStats:
    """What the export wrote."""

    images: int = 0
    refs: int = 0
    true_sentences: int = 0
    false_sentences: int = 0


def _ids_of(query_id: str, where: str) -> tuple[int, int | None]:
    """(ref_id, sent_id) of "<ref_id>:<sent_id>", or (ref_id, None) for a generated "<ref_id>:<sent_id>:fp<k>"."""
    parts = query_id.split(":")
    try:
        if len(parts) == 2:
            return int(parts[0]), int(parts[1])
        if len(parts) == 3 and parts[2].startswith("fp"):
            return int(parts[0]), None
    except ValueError:
        pass
    raise ValueError(
        f"{where}: query id {query_id!r} is not a REFER id '<ref_id>:<sent_id>[:fp<k>]'; export_refer only "
        "works for REFER-family inputs"
    )


def _sentence(q: Query, sent_id: int | None) -> dict[str, Any]:
    sent: dict[str, Any] = {"sent_id": sent_id, "sent": q.text, "raw": q.text, "tokens": q.text.split()}
    if q.exists:
        sent.update(is_false_premise=False, gt_sent=q.gt_sent or q.text)
    elif q.gt_sent is not None:
        sent.update(is_false_premise=True, gt_sent=q.gt_sent)
    else:
        sent["exist"] = False  # an R-RefCOCO-style negative: absent object, nothing to correct to
    if q.edit is not None:
        sent["edit"] = q.edit
    if q.query_type is not None:
        sent["type"] = q.query_type
    if "verified" in q.extra:
        sent["verified"] = bool(q.extra["verified"])
    return sent


def export_refer(
    samples: Iterable[ShardSample],
    *,
    instances: dict[str, Any],
    coco: CocoIndex,
    out_root: str,
    name: str,
    split: str,
    split_by: str,
) -> ExportStats:
    """Write `samples` (augmented REFER samples of one split) as the REFER dataset `name` under `out_root`.

    Args:
        samples: decoded output samples (any order; refs are written sorted by ref_id).
        instances: the input dataset's parsed instances.json (images, annotations, categories).
        coco: its index (category and image of each annotation).
        out_root: the raw root of the export (gets refer_seg/...).
        name: dataset folder name, e.g. "fprefcoco".
        split, split_by: the refs' split and the refs file variant.

    Raises:
        ValueError: a query id that is not REFER-shaped, or an annotation missing from instances.json.
    """
    layout = ReferSource(dataset=name, root=out_root, split=split)
    images_by_id = {int(im["id"]): im for im in instances["images"]}
    refs: dict[int, dict[str, Any]] = {}
    pending: list[tuple[dict[str, Any], Query]] = []  # generated sentences waiting for a new sent_id
    stats = ExportStats()
    max_sent_id = 0
    for sample in samples:
        where = f"sample {sample.key} ({sample.source})"
        image_id = int(sample.extra["image_id"]) if "image_id" in sample.extra else None
        for q in sample.queries:
            ref_id, sent_id = _ids_of(q.query_id, where)
            if q.ann_id not in coco.image_of_ann:
                raise ValueError(f"{where}: query {q.query_id} annotation {q.ann_id} is not in instances.json")
            image_id = coco.image_of_ann[q.ann_id] if image_id is None else image_id
            ref = refs.setdefault(ref_id, {
                "ref_id": ref_id, "ann_id": q.ann_id, "image_id": image_id,
                "category_id": coco.category_of_ann[q.ann_id], "split": split, "sent_ids": [],
                "file_name": images_by_id[image_id]["file_name"], "sentences": [],
            })
            sent = _sentence(q, sent_id)
            ref["sentences"].append(sent)
            if sent_id is None:
                pending.append((sent, q))
                stats.false_sentences += 1
            else:
                max_sent_id = max(max_sent_id, sent_id)
                stats.true_sentences += 1
        if image_id is not None:
            file_name = images_by_id[image_id]["file_name"]
            storage.atomic_write_bytes(storage.join(layout.image_dir, file_name), sample.image_bytes)
            stats.images += 1
    for k, (sent, _) in enumerate(pending):
        sent["sent_id"] = max_sent_id + 1 + k
    ordered = [refs[r] for r in sorted(refs)]
    for ref in ordered:
        ref["sent_ids"] = [s["sent_id"] for s in ref["sentences"]]
    stats.refs = len(ordered)

    exported = {ref["image_id"] for ref in ordered}
    subset = {
        "info": {**instances.get("info", {}), "description": f"{name}: false-premise export (jobs.augment)"},
        "images": [im for im in instances["images"] if int(im["id"]) in exported],
        "annotations": [a for a in instances["annotations"] if int(a["image_id"]) in exported],
        "categories": instances["categories"],
    }
    storage.atomic_write_bytes(storage.join(layout.folder, "instances.json"), json.dumps(subset).encode())
    storage.atomic_write_bytes(storage.join(layout.folder, f"refs({split_by}).p"), pickle.dumps(ordered, protocol=2))
    return stats
