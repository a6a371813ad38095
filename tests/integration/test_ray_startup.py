"""Ray start-up of the jobs (jobs/_ray.py) on a real machine, with real Ray and real job subprocesses.

- A stale `ray_current_cluster` file (a `ray start --head` that was killed) must not stop a job without ray_address:
  the job starts its own private cluster. A bare `ray.init(num_cpus=...)` joined the dead head and died with
  "When connecting to an existing cluster, num_cpus and num_gpus must not be provided."
- Two jobs started at once on one machine (one Ray temp dir) both finish.
- ray_address=auto and ray_address=host:port join a running head without passing resource counts.
- A bad ray_address fails with a message naming ray_address and the fix.

Where Ray looks: with no address and no RAY_ADDRESS, `ray.init()` reads `<system temp>/ray/ray_current_cluster`
(ray._common.utils.get_ray_address_file), the system temp being $RAY_TMPDIR, else $TMPDIR, else /tmp. Each test
here points RAY_TMPDIR at a private short dir (Ray's unix socket paths must stay under 107 chars).
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pandas as pd
import pytest

from tests.fixtures.ray_cluster import private_ray_head, ray_env
from tests.fixtures.synth import write_synth_tree

REPO = pathlib.Path(__file__).resolve().parents[2]
JOB_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def reasonseg_root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A tiny synthetic raw tree with ReasonSeg only (2 val images), shared by this module (read-only)."""
    return write_synth_tree(tmp_path_factory.mktemp("raw"), datasets=["reasonseg"], num_reasonseg_train=2,
                            num_reasonseg_val=2)


@pytest.fixture
def ray_tmpdir() -> Iterator[pathlib.Path]:
    """A private, short system temp dir for Ray (RAY_TMPDIR); Ray's own temp dir is `<it>/ray`. Removed afterwards."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="/tmp/rs"))
    (path / "ray").mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def preprocess_cmd(root: pathlib.Path, out: pathlib.Path, *overrides: str) -> list[str]:
    """`python -m jobs.preprocess` on the ReasonSeg val split with one Ray worker."""
    return [sys.executable, "-m", "jobs.preprocess", "dataset=reasonseg", f"root={root}", "split=val", f"out={out}",
            "num_workers=1", *overrides]


def start_job(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start a job subprocess in the repo root, stdout and stderr captured together."""
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_job(proc: subprocess.Popen) -> str:
    """Wait for a job started by start_job; assert it exited 0 and return its output."""
    try:
        log, _ = proc.communicate(timeout=JOB_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        log, _ = proc.communicate()
    assert proc.returncode == 0, log[-4000:]
    return log


def assert_manifest(out: pathlib.Path, root: pathlib.Path) -> None:
    """The job wrote manifest.parquet with every ReasonSeg val image and query of the raw tree `root`."""
    counts = json.loads((root / "synth_summary.json").read_text())["reasonseg"]["val"]
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert int(manifest["samples"].sum()) == counts["images"] and int(manifest["queries"].sum()) == counts["queries"]


def joined_address(log: str) -> str:
    """The address Ray's driver log says the job connected to ("" when it started its own cluster)."""
    marker = "Connecting to existing Ray cluster at address: "
    lines = [line for line in log.splitlines() if marker in line]
    return lines[0].split(marker, 1)[1].rstrip(".") if lines else ""


def test_stale_cluster_file_does_not_stop_a_job(reasonseg_root, ray_tmpdir, tmp_path):
    address_file = ray_tmpdir / "ray" / "ray_current_cluster"  # where ray.init() looks with no address
    address_file.write_text("127.0.0.1:1")  # a head that is long gone
    env = ray_env(RAY_TMPDIR=str(ray_tmpdir))
    log = finish_job(start_job(preprocess_cmd(reasonseg_root, tmp_path / "out"), env))
    assert joined_address(log) == ""
    assert_manifest(tmp_path / "out", reasonseg_root)
    assert address_file.read_text() == "127.0.0.1:1"  # the job neither used nor touched the file


def test_two_jobs_at_once_on_one_machine(reasonseg_root, ray_tmpdir, tmp_path):
    env = ray_env(RAY_TMPDIR=str(ray_tmpdir))  # one Ray temp dir for both, like /tmp/ray on a real machine
    outs = [tmp_path / "a", tmp_path / "b"]
    procs = [start_job(preprocess_cmd(reasonseg_root, out), env) for out in outs]
    for proc in procs:
        finish_job(proc)
    for out in outs:
        assert_manifest(out, reasonseg_root)


def test_jobs_join_a_running_head(reasonseg_root, ray_tmpdir, tmp_path):
    # The head's temp dir is Ray's default temp dir for the jobs (RAY_TMPDIR/ray), so `auto` finds this head through
    # its ray_current_cluster file and never another cluster running on the machine.
    with private_ray_head(str(ray_tmpdir / "ray")) as head:
        env = {**head.env, "RAY_TMPDIR": str(ray_tmpdir)}
        for name, address in (("auto", "auto"), ("explicit", head.address)):
            out = tmp_path / name
            log = finish_job(start_job(preprocess_cmd(reasonseg_root, out, f"ray_address={address}"), env))
            port = head.address.rsplit(":", 1)[1]
            assert joined_address(log).endswith(f":{port}"), log[-4000:]  # Ray prints the node IP for 127.0.0.1
            assert_manifest(out, reasonseg_root)


def test_bad_ray_address_names_the_key_and_the_fix():
    proc = subprocess.run([sys.executable, "-c", "from jobs._ray import init_ray; init_ray('no-port-here')"],
                          cwd=REPO, env=ray_env(), capture_output=True, text=True, timeout=JOB_TIMEOUT_S)
    assert proc.returncode == 1
    assert "ray_address=no-port-here" in proc.stderr
    assert "start the cluster with `ray start --head` or leave ray_address empty" in proc.stderr
