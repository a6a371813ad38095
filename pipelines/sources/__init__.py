"""Raw-dataset readers, one per family, behind one `open_source(dataset, root, split)` entry point.

    src = open_source("refcoco", "/data/raw", "val")     # ValueError naming the key when root/dataset is wrong
    units, rejects = src.index()                          # cheap, driver side
    result = src.load(units[0])                           # LoadResult(sample, rejects), worker side
    for item in iter_samples(src): ...                    # ShardSample | Reject, streaming
"""

from __future__ import annotations

import os

from pipelines.sources.ade20k import Ade20kSource
from pipelines.sources.base import LoadResult, Reject, Source, WorkUnit, iter_samples, read_image
from pipelines.sources.coco_parts import CocoPartsSource
from pipelines.sources.cocostuff import CocoStuffSource
from pipelines.sources.llava import LlavaSource
from pipelines.sources.mapillary import MapillarySource
from pipelines.sources.reasonseg import ReasonSegSource, rasterise_shapes
from pipelines.sources.refer import ReferSource, decode_segmentation, sentence_exists
from pipelines.sources.safe_pickle import UnsafePickleError, load_plain_pickle

REFER_DATASETS = (
    "refcoco", "refcoco+", "refcocog", "refclef",
    "R-refcoco", "R-refcoco+", "R-refcocog",
    "fprefcoco", "fprefcoco+", "fprefcocog",
)
DATASETS = ("reasonseg", *REFER_DATASETS, "llava_vqa", "ade20k", "cocostuff", "pascal_part", "paco_lvis",
            "mapillary")
"""Dataset names the preprocessing job accepts."""
SEMSEG_DATASETS = ("ade20k", "cocostuff", "pascal_part", "paco_lvis", "mapillary")
"""Semantic-segmentation datasets (READ's sem_seg): one query per present class or part annotation; their samples
list the dataset's classes absent from the image in `extra["absent_classes"]` (for READ's false premises)."""

__all__ = [
    "DATASETS", "REFER_DATASETS", "SEMSEG_DATASETS", "Ade20kSource", "CocoPartsSource", "CocoStuffSource",
    "LlavaSource", "LoadResult", "MapillarySource", "ReasonSegSource", "ReferSource", "Reject", "Source",
    "UnsafePickleError", "WorkUnit", "decode_segmentation", "iter_samples", "load_plain_pickle", "open_source",
    "rasterise_shapes", "read_image", "sentence_exists",
]


def open_source(dataset: str, root: str, split: str, *, split_by: str = "") -> Source:
    """The reader for `dataset` over the raw data under `root`.

    Raises:
        ValueError: unknown dataset (names the `dataset` key and the known names), a missing `root` or dataset
            folder (names `root` and the expected layout), or a missing refs file (names `split_by`).
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset: unknown dataset {dataset!r}; use one of {list(DATASETS)}")
    if not os.path.isdir(root):
        raise ValueError(f"root: {root!r} is not a folder; set root= to the raw data root (e.g. the jobs.synth out=)")
    if split_by and dataset not in REFER_DATASETS:
        raise ValueError(f"split_by: only REFER datasets have a splitBy, got split_by={split_by!r} for {dataset}")
    if dataset == "reasonseg":
        src: Source = ReasonSegSource(dataset=dataset, root=root, split=split)
    elif dataset == "llava_vqa":
        src = LlavaSource(dataset=dataset, root=root, split=split)
    elif dataset == "ade20k":
        src = Ade20kSource(dataset=dataset, root=root, split=split)
    elif dataset == "cocostuff":
        src = CocoStuffSource(dataset=dataset, root=root, split=split)
    elif dataset == "mapillary":
        src = MapillarySource(dataset=dataset, root=root, split=split)
    elif dataset in ("pascal_part", "paco_lvis"):
        src = CocoPartsSource(dataset=dataset, root=root, split=split)
    else:
        src = ReferSource(dataset=dataset, root=root, split=split, split_by=split_by)
    src.check()  # type: ignore[attr-defined]
    return src
