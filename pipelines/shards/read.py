"""The one reader of WebDataset tar shards: raw samples of a shard, with the error policy as a parameter.

Raw samples are the dicts WebDataset yields ({"__key__", "__url__", member suffix: bytes}); `schemas.sample.decode`
turns one into a ShardSample. Three callers, three policies:
    training loader   count the broken shard, log it, keep the samples already read (pipelines/data/stream.py)
    evaluation        turn the rest of the shard into one error row (pipelines/evaluate/shards.py)
    augment readback  raise: the job's own output must be intact (pipelines/augment/readback.py)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import fsspec
from webdataset.tariterators import group_by_keys, tar_file_expander

OnError = Callable[[str, BaseException], None]
"""Called with (url, error) when a shard cannot be opened or breaks mid-way; the rest of that shard is skipped."""


def raw_samples(urls: str | Iterable[str], *, on_error: OnError | None = None) -> Iterator[dict[str, Any]]:
    """Raw samples of each shard of `urls` (local paths or fsspec URIs), shard by shard, in tar order.

    With `on_error` None an unreadable or truncated shard raises (OSError, tarfile.TarError, ValueError);
    otherwise `on_error(url, error)` is called once and reading goes on with the next shard.
    """
    for url in [urls] if isinstance(urls, str) else urls:
        yield from _one_shard(url, on_error)


def _one_shard(url: str, on_error: OnError | None) -> Iterator[dict[str, Any]]:
    failures: list[BaseException] = []

    def stop_shard(exn: BaseException) -> bool:  # webdataset handler: False = stop reading this shard
        if on_error is None:
            raise exn
        failures.append(exn)
        return False

    try:
        stream = fsspec.open(url, "rb").open()
    except OSError as err:
        stop_shard(err)
    else:
        try:
            files = tar_file_expander([{"url": url, "stream": stream}], handler=stop_shard)
            yield from group_by_keys(files, handler=stop_shard)
        finally:
            stream.close()
    if failures:
        on_error(url, failures[0])
