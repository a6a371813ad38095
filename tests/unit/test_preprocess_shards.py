"""Sharding (pipelines/shards) and the preprocessing job run inline (num_workers=0): plan, tar bytes, resume,
accounting, fatal configuration errors. Ray execution is covered in tests/integration/test_preprocess_*.py."""

from __future__ import annotations

import io
import json
import pickle
import tarfile

import fsspec
import numpy as np
import pytest
import webdataset as wds

import pipelines.shards.run as shard_run
from jobs.preprocess import main
from pipelines.shards import TarShardWriter, plan_shards, write_shards
from pipelines.sources import WorkUnit
from schemas.sample import Query, ShardSample, decode, encode
from tests.fixtures.preprocess import read_out, tree_bytes


def _unit(key: str, est: int = 100, n: int = 1) -> WorkUnit:
    return WorkUnit(key=key, source=f"/raw/{key}.jpg", num_queries=n, est_bytes=est, payload={"k": key})


def _sample(key: str, h: int = 6, w: int = 8) -> ShardSample:
    mask = np.zeros((h, w), np.uint8)
    mask[1:3, 2:5] = 1
    mask[0, 0] = 255
    return ShardSample(key=key, dataset="toy", split="train", image_bytes=b"\x89PNG fake " + key.encode(),
                       image_format="png", height=h, width=w,
                       queries=[Query(query_id=f"{key}:0", text="the thing", mask=mask),
                                Query(query_id=f"{key}:1", text="no thing", exists=False)])


def test_plan_limits_order_and_digest():
    units = [_unit(f"k{i:02d}", est=300 if i != 7 else 5000) for i in range(12)]
    plan = plan_shards(list(reversed(units)), shard_max_samples=4, shard_max_bytes=1000)
    keys = [[u.key for u in t.units] for t in plan]
    assert [k for ks in keys for k in ks] == sorted(u.key for u in units)
    assert all(len(ks) <= 4 for ks in keys)
    assert all(sum(u.est_bytes for u in t.units) <= 1000 or len(t.units) == 1 for t in plan)
    assert ["k07"] in keys  # an oversized unit gets a shard of its own
    again = plan_shards(units, shard_max_samples=4, shard_max_bytes=1000)
    assert [t.digest for t in again] == [t.digest for t in plan]
    other = plan_shards(units, shard_max_samples=4, shard_max_bytes=1000, context="split=val")
    assert other[0].digest != plan[0].digest
    with pytest.raises(ValueError, match="duplicate sample key 'k01'"):
        plan_shards([*units, _unit("k01")], shard_max_samples=4, shard_max_bytes=1000)


def test_tar_bytes_deterministic_and_readable():
    def tar_of(samples):
        buf = io.BytesIO()
        with TarShardWriter(buf) as tar:
            for s in samples:
                tar.write(encode(s))
        return buf.getvalue(), tar.sha256, tar.num_bytes

    a, sha_a, n_a = tar_of([_sample("a"), _sample("b")])
    b, sha_b, _ = tar_of([_sample("a"), _sample("b")])
    assert a == b and sha_a == sha_b and n_a == len(a)
    with tarfile.open(fileobj=io.BytesIO(a)) as tf:
        members = tf.getmembers()
    assert [m.name for m in members] == ["a.image", "a.json", "a.masks.npz", "b.image", "b.json", "b.masks.npz"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.mode) for m in members} == {(0, 0, 0, "", 0o644)}


@pytest.mark.parametrize("scheme", ["local", "memory"])
def test_write_shards_stream_limits_and_roundtrip(tmp_path, scheme):
    out = str(tmp_path / "out") if scheme == "local" else f"memory://pp-test-{tmp_path.name}/out"
    samples = [_sample(f"s{i:02d}", h=40, w=50) for i in range(9)]
    summary = write_shards(iter(samples), out, shard_max_samples=4, shard_max_bytes=4 * 10240, dataset="toy",
                           split="train")
    fs, root = fsspec.core.url_to_fs(out)
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.glob(f"{root}/shard-*.tar"))
    assert names == [r.shard for r in summary.records] and len(names) >= 3
    assert all(r.samples <= 4 and (r.bytes <= 4 * 10240 or r.samples == 1) for r in summary.records)
    got = []
    for name in names:  # copy out of the (possibly in-memory) filesystem, read with WebDataset as consumers do
        local = tmp_path / f"read-{name}"
        local.write_bytes(fs.cat_file(f"{root}/{name}"))
        got += [decode(raw) for raw in wds.WebDataset([str(local)], shardshuffle=False)]
    assert [s.key for s in got] == [s.key for s in samples]
    assert np.array_equal(got[3].queries[0].mask, samples[3].queries[0].mask)
    assert got[3].queries[1].mask is None and got[3].image_bytes == samples[3].image_bytes
    assert summary.queries == 18 and summary.input_queries == 18
    import pyarrow.parquet as pq

    manifest = pq.read_table(f"{root}/manifest.parquet", filesystem=fs)
    assert manifest.column("queries").to_pylist() == [r.queries for r in summary.records]
    assert manifest.schema.metadata[b"schema_version"] == b"1"


def _job(raw, out, *extra):
    return main(["dataset=refcoco", f"root={raw}", "split=train", f"out={out}", "num_workers=0",
                 "shard_max_samples=2", *extra])


def test_resume_skips_good_shards_and_rewrites_bad_ones(refer_raw, tmp_path, capsys):
    out = tmp_path / "out"
    _job(refer_raw, out)
    first = tree_bytes(out)
    shards = sorted(n for n in first if n.endswith(".tar"))
    assert len(shards) >= 3
    # tamper one shard, delete another and its record, leave a temporary file of a "killed" writer behind
    (out / shards[0]).write_bytes(b"corrupted")
    (out / shards[1]).unlink()
    (out / "_done" / shards[1].replace(".tar", ".json")).unlink()
    (out / f".tmp-deadbeef-{shards[2]}").write_bytes(b"partial")
    mtime_kept = (out / shards[2]).stat().st_mtime_ns
    capsys.readouterr()
    _job(refer_raw, out)
    log = capsys.readouterr().out
    assert f"{len(shards) - 2} already done" in log
    assert tree_bytes(out) == first
    assert (out / shards[2]).stat().st_mtime_ns == mtime_kept  # skipped, not rewritten
    assert not list(out.glob(".tmp-*"))


def test_killed_run_then_rerun_gives_same_output(refer_raw, tmp_path, monkeypatch):
    clean = tmp_path / "clean"
    _job(refer_raw, clean)
    out = tmp_path / "killed"
    real = shard_run.run_shard_task
    calls = {"n": 0}

    def dies_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process dies mid-run
        return real(*args, **kwargs)

    monkeypatch.setattr(shard_run, "run_shard_task", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        _job(refer_raw, out)
    assert not (out / "manifest.parquet").exists()
    monkeypatch.setattr(shard_run, "run_shard_task", real)
    _job(refer_raw, out)
    assert _outputs(out) == _outputs(clean)
    # a different plan (other shard size) rewrites and removes stale shards
    _job(refer_raw, out, "shard_max_samples=3")
    fresh = tmp_path / "fresh"
    _job(refer_raw, fresh, "shard_max_samples=3")
    assert _outputs(out) == _outputs(fresh)


def _outputs(out) -> dict[str, bytes]:
    """Every output file but config.yaml (which names the output folder itself)."""
    files = {k: v for k, v in tree_bytes(out).items() if k != "config.yaml"}
    assert "manifest.parquet" in files and "rejects.parquet" in files
    return files


def test_accounting_identity_with_bad_input(refer_raw, tmp_path):
    folder = refer_raw / "refer_seg" / "refcoco"
    refs = pickle.loads((folder / "refs(unc_exclude_unified).p").read_bytes())
    train = [r for r in refs if r["split"] == "train"]
    n_input = sum(len(r["sentences"]) for r in train)
    train[0]["ann_id"] = -5
    train[1]["sentences"].append(dict(train[1]["sentences"][0]))  # duplicate sent_id -> invalid sample
    n_input += 1
    (folder / "refs(unc_exclude_unified).p").write_bytes(pickle.dumps(refs, protocol=2))
    out = tmp_path / "out"
    _job(refer_raw, out)
    manifest, rejects, samples = read_out(out)
    assert int(manifest["queries"].sum()) + int(rejects["num_queries"].sum()) == n_input
    assert sum(s.num_queries for s in samples) == int(manifest["queries"].sum())
    assert int(manifest["samples"].sum()) == len(samples)
    assert set(rejects["reason"].str.split(":").str[0]) == {"unknown_ann_id", "invalid_sample"}
    assert (rejects["dataset"] == "refcoco").all() and (rejects["split"] == "train").all()


def test_config_yaml_reproduces_and_fatal_errors_exit_nonzero(refer_raw, tmp_path, capsys):
    out = tmp_path / "out"
    _job(refer_raw, out)
    again = tmp_path / "again"
    main(["--config", str(out / "config.yaml"), f"out={again}"])
    assert tree_bytes(again, "*.tar") == tree_bytes(out, "*.tar")
    with pytest.raises(SystemExit, match="dataset") as err:
        main(["dataset=refcocoz", f"root={refer_raw}", f"out={tmp_path / 'x'}", "num_workers=0"])
    assert err.value.code not in (0, None)
    with pytest.raises(SystemExit, match="root") as err:
        main(["dataset=refcoco", f"root={tmp_path / 'missing'}", f"out={tmp_path / 'x'}", "num_workers=0"])
    assert err.value.code not in (0, None)
    (refer_raw / "reason_seg" / "ReasonSeg" / "train" / "bad.json").write_text("{")
    with pytest.raises(SystemExit, match="on_bad_sample=raise"):
        main(["dataset=reasonseg", f"root={refer_raw}", f"out={tmp_path / 'y'}", "num_workers=0",
              "on_bad_sample=raise"])
    cfg = json.dumps(str((out / "config.yaml").read_text()))
    assert "shard_max_samples: 2" in json.loads(cfg)


def test_job_writes_to_fsspec_memory_uri_and_resumes(refer_raw, capsys):
    out = f"memory://pp-job-{refer_raw.name}/refcoco"
    _job(refer_raw, out)
    fs, root = fsspec.core.url_to_fs(out)
    first = {p: fs.cat_file(p) for p in sorted(fs.find(root))}
    assert any(p.endswith("shard-000000.tar") for p in first) and any(p.endswith("config.yaml") for p in first)
    assert not any("/.tmp-" in p for p in first)
    capsys.readouterr()
    _job(refer_raw, out)
    assert "3 already done" in capsys.readouterr().out
    assert {p: fs.cat_file(p) for p in sorted(fs.find(root))} == first
