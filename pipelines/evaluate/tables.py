"""Result part files (one per input shard) and the commit step that turns them into the result tables.

Layout of an evaluation output folder `out`:

    out/parts/run.json                                   fingerprint of what the parts were scored with
    out/parts/part-w<worker>-s<shard index>-<url hash>.parquet   one per input shard, written atomically
    out/queries/dataset=<d>/split=<s>/part-0.parquet     committed per-query rows (QUERY_SCHEMA)
    out/summary.parquet                                  committed per-(dataset, split, subset) metrics (SUMMARY_SCHEMA)
    out/config.yaml                                      the resolved job config; `--config` reproduces the run

A part is keyed by the shard's index in the data selection and a hash of its URL, so a re-run with the same `out`
(whatever the worker count) reuses finished parts and scores only the missing shards. Every query is scored in
exactly one part; the commit sorts rows deterministically, so 1 and N workers give identical tables.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from typing import Any
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import storage
from pipelines.evaluate import metrics
from schemas.arrow import check_version
from schemas.results import QUERY_SCHEMA, SUMMARY_SCHEMA, validate_queries, validate_summary

SORT_KEYS = ("dataset", "split", "sample_key", "query_id", "error")
"""Deterministic row order of the committed queries table."""

PARTITION_COLS = ["dataset", "split"]
RERUN = "it was written by an older version of this code: re-run jobs.evaluate into a new out="
_PART = re.compile(r"part-w(\d+)-s(\d+)-([0-9a-f]{8})\.parquet$")


def shard_id(index: int, url: str) -> str:
    """The part key of a shard: its index in the data selection and a hash of its URL."""
    return f"s{index:05d}-{hashlib.sha1(url.encode()).hexdigest()[:8]}"


def part_uri(out: str, worker: int, index: int, url: str) -> str:
    return storage.join(out, "parts", f"part-w{worker:03d}-{shard_id(index, url)}.parquet")


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Row dicts (pipelines.evaluate.rows) -> a table validated against QUERY_SCHEMA."""
    return validate_queries(pa.Table.from_pylist(rows, schema=QUERY_SCHEMA))


def write_part(out: str, worker: int, index: int, url: str, rows: list[dict[str, Any]]) -> str:
    """Write one shard's rows atomically; returns the part's URI."""
    uri = part_uri(out, worker, index, url)
    storage.atomic_write_parquet(uri, rows_to_table(rows))
    return uri


def finished_parts(out: str) -> dict[str, str]:
    """{shard id: part URI} of the parts already written under `out`."""
    found: dict[str, str] = {}
    parts_dir = storage.join(out, "parts")
    if not storage.exists(parts_dir):
        return found
    for uri in storage.list_files(parts_dir, "part-*.parquet"):
        match = _PART.search(uri)
        if match:
            found.setdefault(f"s{match.group(2)}-{match.group(3)}", uri)
    return found


def prepare_parts(out: str, fingerprint: dict[str, Any]) -> None:
    """Record what the parts are scored with; refuse to mix parts of a different model or data selection.

    Raises ValueError when `out/parts` holds parts scored under another fingerprint.
    """
    uri = storage.join(out, "parts", "run.json")
    text = json.dumps(fingerprint, sort_keys=True, indent=1)
    if storage.exists(uri):
        before = json.loads(storage.read_bytes(uri))
        if before != json.loads(text):
            changed = sorted(k for k in set(before) | set(fingerprint) if before.get(k) != fingerprint.get(k))
            raise ValueError(
                f"out={out}: its parts/ were scored with different settings ({', '.join(changed)}); "
                "pass a new out= or delete the old out folder"
            )
        return
    storage.atomic_write_bytes(uri, text.encode())


def commit(out: str, shard_urls: list[str], *, config_yaml: str, run_id: str, checkpoint: str,
           checkpoint_hash: str = "") -> pd.DataFrame:
    """Concatenate the parts of `shard_urls`, validate, and write queries/, summary.parquet and config.yaml.

    Returns the summary as a DataFrame. Raises ValueError naming the shards whose part is missing, or when the
    selection produced no row at all.
    """
    parts = finished_parts(out)
    ids = [shard_id(i, u) for i, u in enumerate(shard_urls)]
    missing = [u for i, u in zip(ids, shard_urls) if i not in parts]
    if missing:
        raise ValueError(f"out={out}: cannot commit, shards not scored yet: {missing[:5]} ({len(missing)} in all)")
    queries = read_parts([parts[i] for i in ids])
    if queries.num_rows == 0:
        raise ValueError(
            f"data: the {len(shard_urls)} selected shards hold no query to evaluate (empty data selection)"
        )
    queries = queries.sort_by([(k, "ascending") for k in SORT_KEYS])
    write_queries(storage.join(out, "queries"), queries)
    protocols = sorted(set(queries.column("protocol").to_pylist()) - {""})
    summary = summary_table(queries.select(metrics.SUMMARY_INPUTS).to_pandas(), run_id=run_id, checkpoint=checkpoint,
                            checkpoint_hash=checkpoint_hash, protocol="+".join(protocols))
    storage.atomic_write_parquet(storage.join(out, "summary.parquet"), summary)
    storage.atomic_write_bytes(storage.join(out, "config.yaml"), config_yaml.encode())
    return summary.to_pandas()


def read_parts(uris: list[str]) -> pa.Table:
    """The rows of several part files as one table (QUERY_SCHEMA), in the given order.

    Each part is read whole with `pq.ParquetFile` (no dataset discovery: the part list is already known), checked
    against QUERY_SCHEMA, and the parts are concatenated without copying.
    """
    if not uris:
        return QUERY_SCHEMA.empty_table()
    fs, _ = storage.filesystem(uris[0])
    parts = []
    for uri in uris:
        with fs.open(storage.filesystem(uri)[1], "rb") as source:
            table = pq.ParquetFile(source).read(use_threads=False)
        check_version(table.schema, expected=QUERY_SCHEMA, name=f"result part {uri}", fix=RERUN)
        parts.append(validate_queries(table))
    return pa.concat_tables(parts)


def warm_up() -> None:
    """Initialise Arrow's Parquet reader and writer (lazy, tens of ms on first use) on an in-memory empty table.

    The driver calls this while its actors load their models, so the commit does not pay it.
    """
    buf = io.BytesIO()
    pq.write_table(QUERY_SCHEMA.empty_table(), buf)
    pq.ParquetFile(pa.BufferReader(buf.getvalue())).read(use_threads=False)


def summary_table(queries: pd.DataFrame, *, run_id: str, checkpoint: str, checkpoint_hash: str = "",
                  protocol: str = "") -> pa.Table:
    """metrics.summarize over (dataset, split, subset) plus run columns, validated against SUMMARY_SCHEMA."""
    summary = metrics.summarize(queries)
    summary.insert(0, "protocol", protocol)
    summary.insert(0, "checkpoint_hash", checkpoint_hash)
    summary.insert(0, "checkpoint", checkpoint)
    summary.insert(0, "run_id", run_id)
    return validate_summary(pa.Table.from_pandas(summary, preserve_index=False).replace_schema_metadata(None))


def partition_runs(queries: pa.Table) -> list[tuple[str, str, int, int]]:
    """(dataset, split, offset, length) of each contiguous run of equal (dataset, split) in a sorted table."""
    keys = list(zip(queries.column("dataset").to_pylist(), queries.column("split").to_pylist()))
    runs: list[tuple[str, str, int, int]] = []
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            runs.append((*keys[start], start, i - start))
            start = i
    return runs


def write_queries(uri: str, queries: pa.Table) -> None:
    """Write the queries dataset, hive-partitioned by dataset and split, to a temp folder, then rename it in.

    `queries` must be sorted by (dataset, split) first (SORT_KEYS): each partition is one contiguous slice, written
    as `dataset=<d>/split=<s>/part-0.parquet` without the partition columns (they live in the path, URI-escaped as
    pyarrow's hive partitioning expects).
    """
    body = queries.drop_columns(PARTITION_COLS)
    with storage.atomic_folder(uri) as tmp_uri:
        fs, tmp = storage.filesystem(tmp_uri)
        for dataset, split, offset, length in partition_runs(queries):
            folder = f"{tmp}/dataset={quote(dataset, safe='')}/split={quote(split, safe='')}"
            fs.makedirs(folder, exist_ok=True)
            with fs.open(f"{folder}/part-0.parquet", "wb") as sink:
                pq.write_table(body.slice(offset, length), sink)


def read_queries(uri: str) -> pd.DataFrame:
    """The committed queries dataset as a DataFrame in the committed row order (dataset/split as plain str)."""
    fs, path = storage.filesystem(uri)
    table = pq.read_table(path, filesystem=fs, partitioning="hive")
    check_version(table.schema, expected=QUERY_SCHEMA, name=f"queries table {uri}", fix=RERUN)
    table = table.cast(pa.schema([(f.name, pa.string()) if f.name in PARTITION_COLS else f for f in table.schema]))
    table = validate_queries(table).sort_by([(k, "ascending") for k in SORT_KEYS])
    return table.to_pandas()


def read_summary(uri: str) -> pd.DataFrame:
    table = storage.read_parquet(uri)
    check_version(table.schema, expected=SUMMARY_SCHEMA, name=f"summary table {uri}", fix=RERUN)
    return validate_summary(table).to_pandas()
