"""Read an output folder's samples back in manifest order (the export and the summary use it)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from pipelines import storage
from pipelines.shards.read import raw_samples
from schemas.arrow import check_version
from schemas.sample import META_KEY, ShardSample, decode
from schemas.tables import MANIFEST_SCHEMA


def shard_urls(out_uri: str) -> list[str]:
    """The shards listed in `out_uri`/manifest.parquet, in order; ValueError when the manifest is missing."""
    manifest_uri = storage.join(out_uri, "manifest.parquet")
    if not storage.exists(manifest_uri):
        raise ValueError(f"{manifest_uri} does not exist: the shard set is incomplete; (re)run jobs.augment first")
    table = storage.read_parquet(manifest_uri)
    check_version(table.schema, expected=MANIFEST_SCHEMA, name=manifest_uri)
    return [storage.join(out_uri, name) for name in table.column("shard").to_pylist()]


def iter_metadata(urls: list[str]) -> Iterator[dict]:
    """Each sample's metadata JSON (schemas.sample `_meta_of` layout) without decoding images or masks."""
    if not urls:
        return
    for raw in raw_samples(urls):
        yield json.loads(raw[META_KEY])


def iter_samples(urls: list[str]) -> Iterator[ShardSample]:
    """Decoded samples of `urls`, shard by shard, in tar order (one sample in memory at a time)."""
    if not urls:
        return
    for raw in raw_samples(urls):
        yield decode(raw)
