"""Run `jobs.preprocess.main` in-process (on the module's local Ray cluster), read its output back with the project's
schema decoder, and compare it with an `expected.ExpectedRun`, listing every difference."""

from __future__ import annotations

import hashlib
import pathlib
import tarfile
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from schemas.sample import ShardSample, decode
from tests.conformance.expected import SKIP, ExpectedRun, sample_match_key


@dataclass(kw_only=True)
class JobOutput:
    out: pathlib.Path
    manifest: Any  # pandas DataFrame
    rejects: Any  # pandas DataFrame
    samples: list[ShardSample]
    config_text: str
    shard_bytes: dict[str, bytes]


def read_shard(path: pathlib.Path) -> list[ShardSample]:
    """Samples of one WebDataset tar, grouping members by the part of the name before the first dot."""
    groups: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    with tarfile.open(path) as tar:
        for member in tar:
            if not member.isfile():
                continue
            key, _, suffix = member.name.partition(".")
            if key not in groups:
                groups[key] = {"__key__": key, "__url__": str(path)}
                order.append(key)
            groups[key][suffix] = tar.extractfile(member).read()
    return [decode(groups[k]) for k in order]


def read_output(out: pathlib.Path) -> JobOutput:
    manifest = pq.read_table(out / "manifest.parquet").to_pandas()
    rejects = pq.read_table(out / "rejects.parquet").to_pandas()
    samples: list[ShardSample] = []
    shard_bytes = {}
    for name in manifest["shard"]:
        shard_bytes[name] = (out / name).read_bytes()
        samples.extend(read_shard(out / name))
    return JobOutput(out=out, manifest=manifest, rejects=rejects, samples=samples,
                     config_text=(out / "config.yaml").read_text(), shard_bytes=shard_bytes)


def run_job(dataset: str, root: pathlib.Path, split: str, out: pathlib.Path, *, workers: int,
            shard_max_samples: int = 2, extra: tuple[str, ...] = ()) -> JobOutput:
    """`python -m jobs.preprocess dataset=... root=... split=... out=... num_workers=...`, in this process."""
    from jobs.preprocess import main

    rc = main([f"dataset={dataset}", f"root={root}", f"split={split}", f"out={out}", f"num_workers={workers}",
               f"shard_max_samples={shard_max_samples}", *extra])
    assert rc == 0, f"jobs.preprocess returned {rc}"
    return read_output(out)


# ---------------------------------------------------------------------------------------------------------- compare


def _mask_diff(got: np.ndarray | None, want: np.ndarray | None) -> str:
    if want is None:
        return "" if got is None else f"has a mask {got.shape}, expected none"
    if got is None:
        return "has no mask, expected one"
    if got.dtype != np.uint8:
        return f"mask dtype {got.dtype}, expected uint8"
    if got.shape != want.shape:
        return f"mask shape {got.shape}, expected {want.shape}"
    if not np.array_equal(got, want):
        diff = got != want
        ys, xs = np.nonzero(diff)
        return (f"mask differs in {int(diff.sum())} of {diff.size} pixels (first at y={ys[0]}, x={xs[0]}: "
                f"got {got[ys[0], xs[0]]}, expected {want[ys[0], xs[0]]}; got values {np.unique(got).tolist()}, "
                f"expected {np.unique(want).tolist()})")
    return ""


def compare(expected: ExpectedRun, got: JobOutput) -> list[str]:
    """Every difference between the expected run and the job's output, one line each ([] when they agree)."""
    problems: list[str] = []
    by_key: dict[str, list[ShardSample]] = defaultdict(list)
    for s in got.samples:
        by_key[sample_match_key(s.image_bytes, s.conversation)].append(s)
    want_keys = {}
    for e in expected.samples:
        want_keys[e.match_key] = e
    for k, e in want_keys.items():
        found = by_key.get(k, [])
        if len(found) != 1:
            problems.append(f"{e.image_path.name}: expected 1 sample for this image"
                            f"{' + conversation' if e.conversation is not None else ''}, found {len(found)}")
            continue
        s = found[0]
        where = f"{e.image_path.name} (sample {s.key})"
        if (s.height, s.width) != (e.height, e.width):
            problems.append(f"{where}: size {s.height}x{s.width} (HxW), expected {e.height}x{e.width} (cv2.imread)")
        if e.conversation is not None:
            if s.conversation != e.conversation:
                problems.append(f"{where}: conversation {s.conversation!r}, expected {e.conversation!r}")
            continue
        got_q = {q.query_id: q for q in s.queries}
        want_q = e.queries or {}
        if set(got_q) != set(want_q):
            problems.append(f"{where}: query ids differ: missing {sorted(set(want_q) - set(got_q))}, "
                            f"unexpected {sorted(set(got_q) - set(want_q))}")
        for qid in sorted(set(got_q) & set(want_q)):
            q, w = got_q[qid], want_q[qid]
            if q.text != w.text:
                problems.append(f"{where} query {qid}: text {q.text!r}, expected {w.text!r}")
            if q.exists != w.exists:
                problems.append(f"{where} query {qid}: exists {q.exists}, expected {w.exists}")
            if w.gt_sent is not SKIP and q.gt_sent != w.gt_sent:
                problems.append(f"{where} query {qid}: gt_sent {q.gt_sent!r}, expected {w.gt_sent!r}")
            if w.is_sentence is not SKIP and q.is_sentence != w.is_sentence:
                problems.append(f"{where} query {qid}: is_sentence {q.is_sentence}, expected {w.is_sentence}")
            diff = _mask_diff(q.mask, w.mask)
            if diff:
                problems.append(f"{where} query {qid}: {diff}")
    extra = [s for k, ss in by_key.items() if k not in want_keys for s in ss]
    for s in extra:
        problems.append(f"unexpected sample {s.key} (source {s.source}, {len(s.queries)} queries)")
    problems += compare_rejects(expected, got)
    if expected.input_queries is not None:
        kept = int(got.manifest["queries"].sum()) if len(got.manifest) else 0
        rejected = int(got.rejects["num_queries"].sum()) if len(got.rejects) else 0
        if kept + rejected != expected.input_queries:
            problems.append(f"query accounting: manifest {kept} + rejects {rejected} = {kept + rejected}, "
                            f"input has {expected.input_queries}")
    return problems


def compare_rejects(expected: ExpectedRun, got: JobOutput) -> list[str]:
    import re

    problems = []
    rows = got.rejects.to_dict("records")
    texts = [f"{r['key']} | {r['source']} | {r['reason']}" for r in rows]
    used: set[int] = set()
    for e in expected.rejects:
        hits = [i for i, t in enumerate(texts) if all(re.search(p, t) for p in e.patterns)]
        if len(hits) != 1:
            problems.append(f"expected one reject for {e.what} (matching {e.patterns}), found {len(hits)}"
                            + (f": {[texts[i] for i in hits]}" if hits else ""))
            used.update(hits)
            continue
        used.add(hits[0])
        if int(rows[hits[0]]["num_queries"]) != e.num_queries:
            problems.append(f"reject for {e.what}: num_queries {rows[hits[0]]['num_queries']}, expected "
                            f"{e.num_queries}")
    for i, t in enumerate(texts):
        if i not in used:
            problems.append(f"unexpected reject: {t} (num_queries {rows[i]['num_queries']})")
    return problems


def assert_conforms(expected: ExpectedRun, got: JobOutput, label: str) -> None:
    problems = compare(expected, got)
    if problems:
        shown = "\n  ".join(problems[:25])
        more = f"\n  ... and {len(problems) - 25} more" if len(problems) > 25 else ""
        raise AssertionError(f"{label}: {len(problems)} difference(s) from READ:\n  {shown}{more}")


def manifest_rows(got: JobOutput) -> list[tuple]:
    cols = ["shard", "samples", "queries", "bytes", "sha256"]
    return [tuple(r) for r in got.manifest[cols].itertuples(index=False, name=None)]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
