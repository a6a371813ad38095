"""Mixed WebDataset streams -> TrainBatches: per-rank and per-worker shard split, resampling, shuffling, mixing by
sample rates, decode, per-sample transform and collate, with bad shards and bad samples logged, skipped and counted.

Data flow inside one DataLoader worker w of rank r (W workers, R ranks):

    stream k: shards assigned to (r, w) --(resampled: drawn with replacement | one shuffled pass)--> tar members
              --(webdataset tar expander + group_by_keys)--> raw samples --(shuffle buffer)--> raw samples
    mix:      pick stream k with probability rate_k / sum(rates), then (a stream of several datasets, '::' parts,
              sampling=dataset) part j by its weight (seeded) -> schemas.sample.decode -> SampleTransform
    batch:    `batch_size` examples (in arrival order, or with group_by_length of similar length: a buffer of
              `length_group_buffer` examples sorted by length, its batches in seeded order, pipelines.data.bucketing)
              -> collate -> (TrainBatch, the worker's cumulative LoaderStats)

The training process iterates `StreamLoader`, which keeps the latest stats of each worker so the loop can report
`skipped_samples`. Everything is seeded from (seed, epoch, rank, worker, stream name): the same config and policy
give the same batches. References: the WebDataset resampling/splitting design (webdataset.ResampledShards,
split_by_node, split_by_worker), re-implemented here from plain values so no torch.distributed call is needed.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import fsspec
import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from pipelines.data.bucketing import fixed_batches, length_grouped_batches
from pipelines.data.collate import Example, collate
from pipelines.data.config import DataConfig
from pipelines.data.transform import ModelInputSpec, SampleTransform
from pipelines.shards.read import raw_samples
from schemas.batch import TrainBatch
from schemas.sample import decode

log = logging.getLogger(__name__)

SAMPLE_ERRORS = (ValueError, KeyError, TypeError, IndexError, OSError, EOFError, zipfile.BadZipFile)
"""What a bad sample can raise in decode/transform; anything else is a bug and propagates."""
_LOG_FIRST, _LOG_EVERY = 20, 100
SHUFFLE_INITIAL = 64
"""Samples a shuffle buffer holds before it yields the first one (it then grows to `shuffle_buffer`): a fresh
loader starts quickly and with little memory even with large buffers and many streams."""


@dataclass(frozen=True, kw_only=True)
class ShardReadPolicy:
    """Which part of the data this process reads: passed down as values from the training loop (never looked up)."""

    seed: int = 0
    """Base seed (usually DataConfig.seed)."""
    rank: int = 0
    """This process's rank among `world_size` training processes (Ray Train world rank)."""
    world_size: int = 1
    """Number of training processes reading disjoint shard subsets."""
    epoch: int = 0
    """Mixed into every seed: bump it (e.g. with the restart count) to get a fresh, still deterministic order."""

    def __post_init__(self) -> None:
        if self.world_size <= 0 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"ShardReadPolicy: need 0 <= rank < world_size, got rank={self.rank}, "
                             f"world_size={self.world_size}")


@dataclass
class LoaderStats:
    """Cumulative counters of one DataLoader worker (snapshots travel with each batch)."""

    worker: int = 0
    shards_read: int = 0
    skipped_shards: int = 0
    samples_read: int = 0
    skipped_samples: int = 0
    batches: int = 0
    samples_per_stream: dict[str, int] = field(default_factory=dict)


def assign_shards(urls: list[str], *, rank: int, world_size: int, worker: int, num_workers: int,
                  resampled: bool) -> list[str]:
    """The shards worker `worker` of rank `rank` reads: every world_size-th by rank, then every num_workers-th.

    Ranks get disjoint subsets whenever len(urls) >= world_size, workers of a rank whenever the rank has >= num_workers
    shards. With resampling, a level that has too few shards to split is shared instead (draws then overlap, but no
    worker is left without data); without resampling, a worker past the end simply gets no shards.
    """
    rank_urls = urls[rank::world_size]
    if resampled and len(urls) < world_size:
        rank_urls = list(urls)
    worker_urls = rank_urls[worker::num_workers]
    if resampled and len(rank_urls) < num_workers:
        worker_urls = list(rank_urls)
    return worker_urls


def read_shard(url: str, stats: LoaderStats) -> Iterator[dict[str, Any]]:
    """Raw samples ({"__key__", "__url__", member suffix: bytes}) of one tar shard (local path or fsspec URI).

    An unreadable or truncated shard is logged with its URL, counted in `stats.skipped_shards`, and the rest of it
    skipped (samples already read stay; an incomplete last sample then fails to decode and is counted as a bad sample).
    """

    def skip(url: str, err: BaseException) -> None:
        stats.skipped_shards += 1
        log.warning("shard %s: unreadable or truncated (%s: %s); skipped the rest of it (%d shards skipped so far)",
                    url, type(err).__name__, err, stats.skipped_shards)

    yield from raw_samples(url, on_error=skip)
    stats.shards_read += 1


def _shard_order(urls: list[str], rng: random.Random, resampled: bool) -> Iterator[str]:
    if resampled:
        while True:
            yield urls[rng.randrange(len(urls))]
    order = list(urls)
    rng.shuffle(order)
    yield from order


def _raw_samples(urls: list[str], *, rng: random.Random, resampled: bool, shuffle_buffer: int,
                 stats: LoaderStats) -> Iterator[dict[str, Any]]:
    def chained() -> Iterator[dict[str, Any]]:
        empty_in_a_row = 0  # resampling over shards that are all unreadable would otherwise spin forever
        for url in _shard_order(urls, rng, resampled):
            got = 0
            for raw in read_shard(url, stats):
                got += 1
                yield raw
            empty_in_a_row = 0 if got else empty_in_a_row + 1
            if empty_in_a_row > max(10, 2 * len(urls)):
                raise ValueError(f"{empty_in_a_row} shards in a row gave no sample (of {len(urls)} shards, e.g. "
                                 f"{url}); the shards are unreadable or empty: check them (jobs.preprocess)")

    if shuffle_buffer <= 1:
        return chained()
    return wds.shuffle(bufsize=shuffle_buffer, initial=min(shuffle_buffer, SHUFFLE_INITIAL), rng=rng)(chained())


class MixedStreams(IterableDataset):
    """Yields (TrainBatch, LoaderStats) from the mixed streams, for the part of the data of this rank and worker."""

    def __init__(self, *, cfg: DataConfig, policy: ShardReadPolicy, urls: dict[str, list[list[str]]],
                 transform: SampleTransform, pad_token_id: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.policy = policy
        self.urls = urls
        """{stream name: [[shard url, ...] per part]}: one part per dataset (sampling=dataset) or one pool."""
        self.rates = {s.name: float(s.rate) for s in cfg.streams}
        self.part_weights = {s.name: s.part_weights() if len(urls[s.name]) > 1 else [1.0] for s in cfg.streams}
        self.transform = transform
        self.pad_token_id = pad_token_id

    def _seed(self, worker: int, what: str) -> str:
        p = self.policy
        return f"{p.seed}-{p.epoch}-{p.rank}-{worker}-{what}"  # str seeds are hashed deterministically (sha512)

    def __iter__(self) -> Iterator[tuple[TrainBatch, LoaderStats]]:
        info = get_worker_info()
        worker, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        stats = LoaderStats(worker=worker)
        examples = self._examples(worker, num_workers, stats)
        if self.cfg.group_by_length:
            batches = length_grouped_batches(examples, batch_size=self.cfg.batch_size,
                                             buffer_size=self.cfg.length_group_buffer,
                                             rng=random.Random(self._seed(worker, "length-groups")))
        else:
            batches = fixed_batches(examples, self.cfg.batch_size)
        for group in batches:
            yield self._batch(group, stats)

    def _examples(self, worker: int, num_workers: int, stats: LoaderStats) -> Iterator[Example]:
        """The mixed, transformed examples of this rank's worker `worker`, in arrival order (bad samples skipped)."""
        sources: dict[str, dict[int, Iterator[dict[str, Any]]]] = {}
        for name, parts in self.urls.items():
            for i, urls in enumerate(parts):
                mine = assign_shards(urls, rank=self.policy.rank, world_size=self.policy.world_size, worker=worker,
                                     num_workers=num_workers, resampled=self.cfg.resampled)
                if not mine:
                    log.warning("stream %s part %d: no shards for rank %d worker %d (%d shards for %d ranks x %d "
                                "workers)", name, i, self.policy.rank, worker, len(urls), self.policy.world_size,
                                num_workers)
                    continue
                what = f"shards-{name}" if len(parts) == 1 else f"shards-{name}-{i}"
                sources.setdefault(name, {})[i] = _raw_samples(
                    mine, rng=random.Random(self._seed(worker, what)), resampled=self.cfg.resampled,
                    shuffle_buffer=self.cfg.shuffle_buffer, stats=stats)
        mix_rng = random.Random(self._seed(worker, "mix"))
        sample_rng = random.Random(self._seed(worker, "sample"))
        while sources:
            names = list(sources)
            name = mix_rng.choices(names, weights=[self.rates[n] for n in names])[0]
            parts = list(sources[name])
            part = parts[0] if len(parts) == 1 else mix_rng.choices(
                parts, weights=[self.part_weights[name][i] for i in parts])[0]
            try:
                raw = next(sources[name][part])
            except StopIteration:
                del sources[name][part]  # one-pass mode: this part is done for this worker
                if not sources[name]:
                    del sources[name]
                continue
            stats.samples_read += 1
            example = self._transform(raw, name, sample_rng, stats)
            if example is None:
                continue
            stats.samples_per_stream[name] = stats.samples_per_stream.get(name, 0) + 1
            yield example

    def _transform(self, raw: dict[str, Any], name: str, rng: random.Random, stats: LoaderStats) -> Example | None:
        try:
            example = self.transform(decode(raw), rng)
        except SAMPLE_ERRORS as err:
            stats.skipped_samples += 1
            if stats.skipped_samples <= _LOG_FIRST or stats.skipped_samples % _LOG_EVERY == 0:
                log.warning("stream %s, shard %s: sample %s skipped (%s: %s); %d samples skipped so far", name,
                            raw.get("__url__", "?"), raw.get("__key__", "?"), type(err).__name__, err,
                            stats.skipped_samples)
            return None
        for m in example.meta:
            m["stream"] = name
        return example

    def _batch(self, examples: list[Example], stats: LoaderStats) -> tuple[TrainBatch, LoaderStats]:
        stats.batches += 1
        snapshot = dataclasses.replace(stats, samples_per_stream=dict(stats.samples_per_stream))
        return collate(examples, pad_token_id=self.pad_token_id), snapshot


class StreamLoader:
    """Iterable of TrainBatch over a torch DataLoader of `MixedStreams`, with the workers' counters summed.

    Attributes after (or during) iteration: `skipped_samples`, `skipped_shards`, `stats()` (all counters).
    """

    def __init__(self, dataset: MixedStreams, *, num_workers: int, prefetch_factor: int) -> None:
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self._worker_stats: dict[int, LoaderStats] = {}

    def __iter__(self) -> Iterator[TrainBatch]:
        kwargs: dict[str, Any] = {}
        if self.num_workers > 0:
            kwargs = {"prefetch_factor": self.prefetch_factor, "worker_init_fn": _init_worker}
        loader = DataLoader(self.dataset, batch_size=None, num_workers=self.num_workers, collate_fn=_identity,
                            **kwargs)
        for batch, stats in loader:
            self._worker_stats[stats.worker] = stats
            yield batch

    def _total(self, name: str) -> int:
        return sum(getattr(s, name) for s in self._worker_stats.values())

    @property
    def skipped_samples(self) -> int:
        return self._total("skipped_samples")

    @property
    def skipped_shards(self) -> int:
        return self._total("skipped_shards")

    def stats(self) -> dict[str, Any]:
        """Counters summed over workers: shards_read, skipped_shards, samples_read, skipped_samples, batches,
        samples_per_stream."""
        per_stream: dict[str, int] = {}
        for s in self._worker_stats.values():
            for k, v in s.samples_per_stream.items():
                per_stream[k] = per_stream.get(k, 0) + v
        out: dict[str, Any] = {k: self._total(k) for k in
                               ("shards_read", "skipped_shards", "samples_read", "skipped_samples", "batches")}
        out["samples_per_stream"] = per_stream
        return out


def _identity(x: Any) -> Any:
    return x


def _init_worker(worker_id: int) -> None:
    # One intra-op thread per worker: the per-sample tensor ops are small and W workers x N threads only contend.
    torch.set_num_threads(1)


def build_loader(cfg: DataConfig, policy: ShardReadPolicy, *, tokenizer: Any, spec: ModelInputSpec) -> StreamLoader:
    """The training loader from config: validates the shard patterns first (fails naming the key), then wires
    MixedStreams -> DataLoader. `spec` comes from the model (`ModelInputSpec.from_model(read)`)."""
    urls = cfg.validate_shards()
    if not cfg.resampled:
        for i, s in enumerate(cfg.streams):
            smallest = min(len(part) for part in urls[s.name])
            if smallest < policy.world_size:
                raise ValueError(
                    f"data.streams[{i}].shards (stream {s.name!r}): {smallest} shards cannot be split over "
                    f"{policy.world_size} ranks without resampling; set data.resampled=true or write more shards"
                )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    transform = SampleTransform(tokenizer=tokenizer, spec=spec, num_classes_per_sample=cfg.num_classes_per_sample,
                                max_length=cfg.max_length or None, premises=cfg.premises())
    dataset = MixedStreams(cfg=cfg, policy=policy, urls=urls, transform=transform, pad_token_id=int(pad_id))
    return StreamLoader(dataset, num_workers=cfg.num_workers, prefetch_factor=cfg.prefetch_factor)


