"""End to end through the Ray Jobs API: `ray start --head`, `ray job submit --working-dir . -- python -m
jobs.preprocess ...`, then the head's process group is ended. The job joins the submitted-to cluster (RAY_ADDRESS)
instead of starting one."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import tempfile
import time

import pytest

from tests.fixtures.preprocess import read_out
from tests.fixtures.ray_cluster import RAY, private_ray_head

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def ray_head():
    """A private Ray head with the dashboard (the Jobs API), on free ports and its own temp dir; yields the dashboard
    URL and the env for `ray job submit`. Torn down by ending exactly its process tree (see private_ray_head)."""
    temp_dir = tempfile.mkdtemp(prefix="/tmp/rs")  # short: Ray's socket paths must stay under 107 chars
    try:
        with private_ray_head(temp_dir, dashboard=True) as head:
            yield head.dashboard_url, head.env
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.slow
def test_ray_job_submit_end_to_end(ray_head, synth_root, tmp_path):
    address, env = ray_head
    out = tmp_path / "shards"
    runtime_env = json.dumps({"excludes": [".venv", "runs", ".git", "bench/out", "*.egg-info", "__pycache__"]})
    cmd = [RAY, "job", "submit", "--address", address, "--working-dir", str(REPO), "--runtime-env-json", runtime_env,
           "--", "python", "-m", "jobs.preprocess", "dataset=reasonseg", f"root={synth_root}", "split=train",
           f"out={out}", "num_workers=2", "shard_max_samples=2"]
    for _ in range(40):  # the head and its job agent need some seconds to come up
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        log = proc.stderr + proc.stdout
        if not any(m in log for m in ("No available agent", "Failed to connect", "Connection refused")):
            break
        time.sleep(3)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "samples" in proc.stdout and "[preprocess] shards" in proc.stdout
    counts = json.loads((synth_root / "synth_summary.json").read_text())["reasonseg"]["train"]
    manifest, rejects, samples = read_out(out)
    assert len(samples) == counts["images"] and len(rejects) == 0
    assert int(manifest["queries"].sum()) == counts["queries"]
    assert (out / "config.yaml").exists()
