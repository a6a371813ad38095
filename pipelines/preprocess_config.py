"""Configuration of the preprocessing job (jobs/preprocess.py): raw dataset -> WebDataset shards."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from pipelines.shards.writer import ON_BAD_SAMPLE
from pipelines.sources import DATASETS


@dataclass(kw_only=True)
class PreprocessConfig:
    """`python -m jobs.preprocess dataset=refcoco root=/data/raw split=train out=/data/shards/refcoco/train`."""

    dataset: str = MISSING
    """Raw dataset name: reasonseg, refcoco(+/g), refclef, R-refcoco(+/g), fprefcoco(+/g), llava_vqa, ade20k,
    cocostuff, pascal_part, paco_lvis, mapillary."""
    root: str = MISSING
    """Raw data root (local folder) holding reason_seg/, refer_seg/, llava_dataset/ + coco/, ade20k/, cocostuff/,
    vlpart/pascal_part/, vlpart/paco/ + coco/, mapillary/ (the LISA/READ data layout)."""
    split: str = "train"
    """Split to convert (ReasonSeg: train/val/test; REFER: train/val/testA/testB/test; ADE20K, COCO-Stuff, Mapillary:
    train/val; PASCAL-Part: the <split>.json; PACO-LVIS: the paco_lvis_v1_<split>.json)."""
    out: str = MISSING
    """Output folder or fsspec URI (file://, s3://, ...) for *.tar, manifest.parquet, rejects.parquet, config.yaml."""
    split_by: str = ""
    """REFER refs variant, the file refs(<split_by>).p; "" reads what READ reads: unc_exclude_unified (refcoco,
    refcoco+, R-refcoco, R-refcoco+) or umd_exclude_unified (refcocog, R-refcocog), falling back to REFER's unc / umd;
    berkeley_exclude_unified for fprefcoco(+/g); unc for refclef. The job writes the variant it read here."""
    shard_max_samples: int = 1000
    """Most images per shard."""
    shard_max_bytes: int = 1 << 30
    """Most bytes per shard (planned on an upper estimate of each sample's size)."""
    num_workers: int = 2
    """Shard tasks running at once on the Ray cluster; 0 runs everything in the driver without Ray."""
    ray_address: str = ""
    """"" starts a local Ray cluster (unless RAY_ADDRESS is set, as under `ray job submit`); "auto"/host:port joins."""
    on_bad_sample: str = "quarantine"
    """quarantine: bad records go to rejects.parquet and the job goes on; raise: stop at the first one."""

    def __post_init__(self) -> None:
        if self.dataset is not MISSING and self.dataset not in DATASETS:
            raise ValueError(f"dataset: unknown dataset {self.dataset!r}; use one of {list(DATASETS)}")
        if self.shard_max_samples <= 0:
            raise ValueError(f"shard_max_samples must be > 0, got {self.shard_max_samples}")
        if self.shard_max_bytes <= 0:
            raise ValueError(f"shard_max_bytes must be > 0, got {self.shard_max_bytes}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0 (0 = no Ray), got {self.num_workers}")
        if self.on_bad_sample not in ON_BAD_SAMPLE:
            raise ValueError(f"on_bad_sample must be one of {ON_BAD_SAMPLE}, got {self.on_bad_sample!r}")
