"""Storage is a URI: local paths by default, any fsspec filesystem (s3://, gs://, memory://) on clusters.

Everything a job writes goes through `atomic_write_bytes` (or `atomic_write_parquet`): the data is written under a
temporary name in the same folder and renamed into place, so a file only ever appears complete.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path inside it) for a local path or fsspec URI."""
    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path


def join(uri: str, *parts: str) -> str:
    """Join path parts onto a local path or URI with '/'."""
    return "/".join([uri.rstrip("/"), *[p.strip("/") for p in parts]])


def absolute_local(uri: str) -> str:
    """`uri` made absolute when it is a local path; URIs and "" unchanged. Ray workers may run in another directory
    than the driver that read the path from the command line."""
    return uri if not uri or "://" in uri else os.path.abspath(uri)


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.exists(path)


def makedirs(uri: str) -> None:
    fs, path = filesystem(uri)
    fs.makedirs(path, exist_ok=True)


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    with fs.open(path, "rb") as f:
        return f.read()


@contextmanager
def atomic_open(uri: str) -> Iterator[io.BufferedWriter]:
    """Open `uri` for binary writing under a temporary sibling name; rename into place on clean exit.

    On an exception the temporary file is removed and the final name is untouched.
    """
    fs, path = filesystem(uri)
    parent = os.path.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    tmp = f"{parent}/.tmp-{uuid.uuid4().hex}-{os.path.basename(path)}" if parent else f".tmp-{uuid.uuid4().hex}-{path}"
    try:
        with fs.open(tmp, "wb") as f:
            yield f
        fs.mv(tmp, path)
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp)
        raise


@contextmanager
def atomic_folder(uri: str) -> Iterator[str]:
    """The one way a folder output appears complete: yields a temporary sibling folder URI (same file system) to
    fill; on clean exit it replaces `uri` (an existing `uri` is moved aside first, then removed); on an exception
    the temporary folder is removed and `uri` is untouched."""
    fs, path = filesystem(uri)
    path = path.rstrip("/")
    parent, name = (path.rsplit("/", 1) if "/" in path else ("", path))
    protocol = uri.split("://", 1)[0] + "://" if "://" in uri else ""
    tmp = f"{parent}/.tmp-{name}-{uuid.uuid4().hex}" if parent else f".tmp-{name}-{uuid.uuid4().hex}"
    fs.makedirs(tmp, exist_ok=True)
    try:
        yield f"{protocol}{tmp}" if protocol and not tmp.startswith(protocol) else tmp
        if fs.exists(path):
            old = f"{parent}/.old-{name}-{uuid.uuid4().hex}" if parent else f".old-{name}-{uuid.uuid4().hex}"
            fs.mv(path, old, recursive=True)
            fs.mv(tmp, path, recursive=True)
            fs.rm(old, recursive=True)
        else:
            fs.mv(tmp, path, recursive=True)
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp, recursive=True)
        raise


def atomic_write_bytes(uri: str, data: bytes) -> None:
    with atomic_open(uri) as f:
        f.write(data)


def atomic_write_parquet(uri: str, table: pa.Table) -> None:
    """Write one Parquet file atomically (schema metadata, e.g. schema_version, is kept)."""
    buf = io.BytesIO()
    pq.write_table(table, buf)
    atomic_write_bytes(uri, buf.getvalue())


def read_parquet(uri: str) -> pa.Table:
    fs, path = filesystem(uri)
    return pq.read_table(path, filesystem=fs)


def list_files(uri: str, pattern: str = "*") -> list[str]:
    """Sorted full URIs (same protocol as `uri`) of files matching `pattern` directly under `uri`."""
    fs, path = filesystem(uri)
    found = sorted(fs.glob(f"{path.rstrip('/')}/{pattern}"))
    protocol = uri.split("://", 1)[0] + "://" if "://" in uri else ""
    return [f"{protocol}{p}" if protocol and not p.startswith(protocol) else p for p in found]
