"""The restricted unpickler for REFER refs files: plain data loads, anything callable is refused before it runs."""

from __future__ import annotations

import os
import pickle

import pytest

from jobs.preprocess import main
from pipelines.sources import UnsafePickleError, load_plain_pickle


class _CreatesFile:
    """Unpickling this with the stock pickle module would create `path` (the attack we defend against)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_plain_containers_and_scalars_load():
    data = [{"ref_id": 1, "sentences": [{"sent": "the red circle", "sent_id": 3}], "split": "train",
             "f": 1.5, "none": None, "t": (1, 2), "s": {1, 2}, "flag": True}]
    assert load_plain_pickle(pickle.dumps(data, protocol=2)) == data  # REFER files are protocol 2 (Python 2)
    data[0]["b"] = b"x"
    assert load_plain_pickle(pickle.dumps(data, protocol=5)) == data


def test_pickle_that_calls_a_function_is_refused_and_nothing_runs(tmp_path):
    victim = tmp_path / "pwned.txt"
    evil = pickle.dumps([{"ref_id": 1}, _CreatesFile(str(victim))])
    with pytest.raises(UnsafePickleError, match="refuses global"):
        load_plain_pickle(evil, name="refs(unc).p")
    assert not victim.exists()
    pickle.loads(evil)  # control: the stock unpickler really would have run it
    assert victim.exists()


def test_refs_file_with_malicious_pickle_rejected_and_job_finishes(refer_raw, tmp_path, capsys):
    victim = tmp_path / "pwned_by_refs.txt"
    refs_file = refer_raw / "refer_seg" / "refcoco" / "refs(unc_exclude_unified).p"
    refs_file.write_bytes(pickle.dumps([_CreatesFile(str(victim))]))
    out = tmp_path / "out"
    assert main(["dataset=refcoco", f"root={refer_raw}", "split=train", f"out={out}", "num_workers=0"]) == 0
    assert not victim.exists()
    import pyarrow.parquet as pq

    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    assert len(rejects) == 1 and rejects[0]["reason"].startswith("unsafe_pickle:")
    assert rejects[0]["source"] == str(refs_file)
    assert pq.read_table(out / "manifest.parquet").num_rows == 0
    assert "unsafe_pickle: 1" in capsys.readouterr().out
    assert os.path.exists(out / "config.yaml")
