"""Finding the evaluation shards and reading their samples, turning undecodable samples into typed failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from pipelines import storage
from pipelines.shards.read import raw_samples
from schemas.sample import META_KEY, ShardSample, check_sample_version, decode


@dataclass(frozen=True, kw_only=True)
class BadSample:
    """A sample (or the rest of a shard) that could not be decoded; it becomes an error row."""

    key: str
    dataset: str
    split: str
    error: str


def list_shards(data: list[str]) -> list[str]:
    """Shard URLs of the data selection: each entry is a .tar file or a folder searched recursively for *.tar.

    The order is deterministic (entries in the given order, each folder's shards sorted); duplicates are dropped.
    Raises ValueError when the selection holds no shard.
    """
    urls: list[str] = []
    for entry in data:
        if entry.endswith(".tar"):
            found = [entry] if storage.exists(entry) else []
        else:
            listed = storage.list_files(entry, "**/*.tar") if storage.exists(entry) else []
            found = [u for u in listed if not _hidden(u)]
        if not found:
            raise ValueError(
                f"data: {entry!r} holds no .tar shards (missing folder or empty); point data= at the output folder "
                "of jobs.preprocess / jobs.augment"
            )
        urls.extend(u for u in found if u not in urls)
    if not urls:
        raise ValueError("data: the data selection is empty; pass data=[<shard dir>,...]")
    return urls


def _hidden(url: str) -> bool:
    return any(part.startswith((".", "_")) for part in url.split("/")[-1:])


def check_schema_version(url: str) -> None:
    """Raise ValueError when the shard's first sample was written under another schema version."""
    for raw in raw_samples(url):
        meta = _meta(raw)
        if meta is None:
            continue
        check_sample_version(meta, f"shard {url}: sample {raw.get('__key__', '?')}")
        return


def read_shard(url: str) -> Iterator[ShardSample | BadSample]:
    """Every sample of one shard, decoded; an undecodable sample comes out as a BadSample.

    A sample written under another schema version raises ValueError (the whole data set needs re-writing).
    A tar that breaks mid-way yields one BadSample for the rest of the shard.
    """
    broken: list[BaseException] = []
    for raw in raw_samples(url, on_error=lambda _url, err: broken.append(err)):
        key = raw.get("__key__", "?")
        meta = _meta(raw)
        if meta is not None:
            check_sample_version(meta, f"shard {url}: sample {key}")
        try:
            yield decode(raw)
        except (ValueError, KeyError, TypeError, OSError) as err:
            meta = meta or {}
            yield BadSample(
                key=key,
                dataset=str(meta.get("dataset", "")),
                split=str(meta.get("split", "")),
                error=f"shard {url}: sample {key}: cannot decode: {err}",
            )
    if broken:
        yield BadSample(key="", dataset="", split="", error=f"shard {url}: unreadable tar: {broken[0]}")


def _meta(raw: dict) -> dict | None:
    try:
        meta = json.loads(raw[META_KEY])
    except (KeyError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return meta if isinstance(meta, dict) else None
