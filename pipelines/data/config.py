"""Typed configuration of the streaming loader: named shard streams with sample rates, batching, workers, seed."""

from __future__ import annotations

import glob as _glob
import posixpath
from dataclasses import dataclass, field

import braceexpand
from omegaconf import MISSING

from pipelines import storage
from pipelines.data.premises import PremisePolicy

SAMPLINGS = ("dataset", "shard")
"""How a stream with several '::' parts is drawn (StreamConfig.sampling)."""


@dataclass(kw_only=True)
class StreamConfig:
    """One dataset in the training mix."""

    name: str = MISSING
    """Stream name, e.g. refer_seg, correct_refer_seg, vqa, neg_refer_seg, sem_seg, reason_seg (unique in the mix)."""
    shards: str = MISSING
    """Shard URLs: a brace pattern (train-{000000..000511}.tar), a glob (train-*.tar), or several joined by '::';
    local paths or fsspec URIs (s3://bucket/refcoco/train-{000000..000063}.tar)."""
    rate: float = 1.0
    """Relative sample rate in the mix (READ ReferSeg: refer_seg 12, correct_refer_seg 2, vqa 2, neg_refer_seg 1)."""
    sampling: str = "shard"
    """How a sample is drawn from a stream whose `shards` has several '::' parts: "shard" reads all parts' shards as
    one pool (a dataset weighs by its number of shards); "dataset" takes each part as one dataset and picks a part
    first (by `weights`, uniformly when empty), then a sample of it, as READ draws refer_seg and sem_seg."""
    weights: list[float] = field(default_factory=list)
    """sampling=dataset: relative weight of each '::' part of `shards`, in order; empty = equal weights."""

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError(f"data.streams[{self.name}].rate must be > 0, got {self.rate}; drop the stream instead")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"data.streams[{self.name}].sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        parts = shard_parts(self.shards) if self.shards is not MISSING else []
        if self.weights and (len(self.weights) != len(parts) or min(self.weights) < 0 or sum(self.weights) <= 0):
            raise ValueError(f"data.streams[{self.name}].weights: need one weight >= 0 per '::' part of shards "
                             f"({len(parts)} parts), with a positive sum; got {list(self.weights)}")

    def part_weights(self) -> list[float]:
        """The weight of each '::' part (equal when `weights` is empty)."""
        return [float(w) for w in self.weights] if self.weights else [1.0] * len(shard_parts(self.shards))


@dataclass(kw_only=True)
class DataConfig:
    """The streaming loader: which shards, how they are mixed, batched, split and shuffled."""

    streams: list[StreamConfig] = field(default_factory=list)
    """The named streams of the mix (at least one before `build_loader`)."""
    batch_size: int = 2
    """Images per micro-batch (each image gives up to `num_classes_per_sample` conversations)."""
    num_classes_per_sample: int = 1
    """Queries drawn per image, one conversation each (READ: 1 for ReferSeg, 3 for the ReasonSeg recipe)."""
    num_workers: int = 2
    """DataLoader worker processes per rank (0: load in the training process)."""
    prefetch_factor: int = 2
    """Batches prefetched per worker (ignored when num_workers is 0)."""
    shuffle_buffer: int = 256
    """Samples held per stream and worker for shuffling (<= 1: no shuffle beyond shard order)."""
    resampled: bool = True
    """True: shards are drawn with replacement forever (multi-epoch, the training default); False: one pass over the
    rank's and worker's shards (needs at least world_size shards per stream)."""
    max_length: int = 0
    """Longest conversation in tokens (image tokens included); longer ones are truncated if no [SEG] or image token
    is cut, else skipped as bad samples. 0: no limit."""
    group_by_length: bool = False
    """Batch examples of similar length together, as transformers' `TrainingArguments.group_by_length` does, so that
    less of each batch is padding: each loader worker holds `length_group_buffer` examples, sorts them by their longest
    conversation (the length `collate` pads a batch's conversations to), cuts them into batches of `batch_size` and
    yields those batches in a seeded random order (pipelines.data.bucketing). Whole examples are reordered, nothing
    else: each image keeps its conversations and each [SEG] its mask; every example is still used exactly once.
    False (the default): batches in arrival order."""
    length_group_buffer: int = 32
    """Examples held per worker when `group_by_length` is true (rounded up to a multiple of `batch_size`; at least 2
    batches). Larger pads less but holds more memory and delays the first batch: an example holds its images, about
    14 MB in float32 at the real presets' sizes (CLIP 336 + SAM 1024), so 32 are about 0.45 GB per worker."""
    seed: int = 0
    """Seed of shard order, shuffling, mixing, template choice and length-group order (with rank, worker and epoch
    mixed in)."""
    semseg_premise_weights: list[float] = field(default_factory=lambda: [0.85, 0.07, 0.08])
    """Per semantic-segmentation sample: weights of true premise / denial / correction about a class absent from the
    image (READ's SemSegDataset)."""
    reasonseg_false_premise_share: float = 0.15
    """Share of ReasonSeg samples holding `false_premise_QA` entries that are trained on those entries and their own
    answers (READ's ReasonSegDataset)."""

    def __post_init__(self) -> None:
        names = [s.name for s in self.streams]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"data.streams: stream names must be unique, {dupes} appear more than once")
        for key in ("batch_size", "num_classes_per_sample", "prefetch_factor"):
            if getattr(self, key) <= 0:
                raise ValueError(f"data.{key} must be > 0, got {getattr(self, key)}")
        for key in ("num_workers", "shuffle_buffer", "max_length", "length_group_buffer"):
            if getattr(self, key) < 0:
                raise ValueError(f"data.{key} must be >= 0, got {getattr(self, key)}")
        if self.group_by_length and self.length_group_buffer < 2 * self.batch_size:
            raise ValueError(f"data.length_group_buffer must hold at least 2 batches (2 x data.batch_size = "
                             f"{2 * self.batch_size} examples) when data.group_by_length is true, got "
                             f"{self.length_group_buffer}")
        self.premises()  # validates the premise rates, naming their keys

    def premises(self) -> PremisePolicy:
        """The premise-mode rates as the conversation builder takes them."""
        return PremisePolicy(semseg_weights=tuple(float(w) for w in self.semseg_premise_weights),
                             reasonseg_false_premise_share=float(self.reasonseg_false_premise_share))

    def validate_shards(self) -> dict[str, list[list[str]]]:
        """Expand every stream's shard spec and check the files exist; returns {stream name: [[url, ...] per '::'
        part]} (one part holding every URL for sampling="shard").

        Raises:
            ValueError: naming `data.streams[i].shards` when there are no streams, a pattern matches nothing or a
                listed shard does not exist.
        """
        if not self.streams:
            raise ValueError("data.streams is empty: give at least one {name, shards, rate} stream")
        out: dict[str, list[list[str]]] = {}
        for i, stream in enumerate(self.streams):
            key = f"data.streams[{i}].shards (stream {stream.name!r})"
            parts = [expand_shards(part) for part in shard_parts(stream.shards)]
            for part, urls in zip(shard_parts(stream.shards), parts):
                if not urls:
                    raise ValueError(f"{key}: pattern {part!r} matches no shard; check the path and the braces")
            urls = [url for part in parts for url in part]
            missing = missing_urls(urls)
            if missing:
                raise ValueError(
                    f"{key}: {len(missing)} of {len(urls)} shards do not exist, e.g. {missing[0]!r}; "
                    "fix the pattern or write the shards first (jobs.preprocess)"
                )
            out[stream.name] = parts if stream.sampling == "dataset" else [urls]
        return out


def shard_parts(spec: str) -> list[str]:
    """The '::'-separated parts of a shard spec (one dataset each), blanks dropped."""
    return [p.strip() for p in spec.split("::") if p.strip()]


def expand_shards(spec: str) -> list[str]:
    """'a-{0..2}.tar::b-*.tar' -> sorted-per-part list of URLs (brace expansion, then globbing of parts with * ? [)."""
    urls: list[str] = []
    for part in shard_parts(spec):
        for url in braceexpand.braceexpand(part):
            if _glob.has_magic(url.split("://", 1)[-1]):
                urls += _glob_uri(url)
            else:
                urls.append(url)
    return urls


def _glob_uri(pattern: str) -> list[str]:
    fs, path = storage.filesystem(pattern)
    protocol = pattern.split("://", 1)[0] + "://" if "://" in pattern else ""
    return [p if not protocol or p.startswith(protocol) else protocol + p for p in sorted(fs.glob(path))]


def missing_urls(urls: list[str]) -> list[str]:
    """The URLs that do not exist (one directory listing per parent folder, not one request per shard)."""
    by_parent: dict[str, list[str]] = {}
    for url in urls:
        by_parent.setdefault(posixpath.dirname(url), []).append(url)
    missing = []
    for parent, group in by_parent.items():
        fs, parent_path = storage.filesystem(parent or ".")
        try:
            present = {posixpath.basename(p.rstrip("/")) for p in fs.ls(parent_path, detail=False)}
        except FileNotFoundError:
            present = set()
        missing += [u for u in group if posixpath.basename(u) not in present]
    return missing
