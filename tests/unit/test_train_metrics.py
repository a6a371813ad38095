"""metrics.parquet bookkeeping (resume without duplicate steps), the progress line, seeds and the atomic export."""

from __future__ import annotations

import os

import pyarrow.parquet as pq
import pytest

from pipelines.train.export import export_model
from pipelines.train.loop import derive_seed
from pipelines.train.metrics import METRICS_SCHEMA, MetricsLog, StepMetrics, format_progress


def row(step: int, loss: float = 1.0) -> StepMetrics:
    return StepMetrics(step=step, loss=loss, losses={"ce_loss": 0.5, "bce_loss": 0.2, "dice_loss": 0.3}, lr=1e-4, samples_per_s=8.0,
                       skipped_samples=step % 2, skipped_shards=0)


def test_metrics_log_rewrites_atomically_and_drops_rows_after_the_resume_step(tmp_path):
    uri = str(tmp_path / "run" / "metrics.parquet")
    log = MetricsLog(uri, resume_step=0)
    for s in range(1, 8):
        log.append(row(s, loss=float(s)))
    log.flush()
    table = pq.read_table(uri)
    assert table.schema.names == METRICS_SCHEMA.names
    assert table.schema.metadata[b"schema_version"] == b"1"
    assert table.column("step").to_pylist() == list(range(1, 8))
    assert [p for p in os.listdir(tmp_path / "run") if p.startswith(".tmp")] == []

    resumed = MetricsLog(uri, resume_step=5)  # the checkpoint we resume from is at step 5
    assert [r["step"] for r in resumed.rows] == [1, 2, 3, 4, 5]
    resumed.append(row(6, loss=60.0))
    resumed.flush()
    assert pq.read_table(uri).column("loss").to_pylist() == [1.0, 2.0, 3.0, 4.0, 5.0, 60.0]
    assert MetricsLog(uri, resume_step=0).rows == []  # a fresh start never inherits rows


def test_metrics_log_refuses_a_step_out_of_order(tmp_path):
    log = MetricsLog(str(tmp_path / "m.parquet"), resume_step=0)
    log.append(row(3))
    with pytest.raises(AssertionError):
        log.append(row(3))


def test_progress_line_has_step_loss_rate_and_eta():
    line = format_progress(row(12, loss=0.123456), total_steps=100, eta_s=3725)
    assert line.startswith("step 12/100 loss 0.1235")
    assert "8.00 samples/s" in line and line.endswith("ETA 1:02:05")


def test_derived_seeds_are_deterministic_and_distinct():
    assert derive_seed(42, 1, 5) == derive_seed(42, 1, 5)
    seeds = {derive_seed(42, rank, step) for rank in range(4) for step in range(50)}
    assert len(seeds) == 200


def test_export_replaces_the_folder_only_when_complete(tmp_path):
    out = tmp_path / "run" / "export"

    def write(tag: str):
        def fn(folder: str) -> None:
            with open(os.path.join(folder, "weights.txt"), "w") as f:
                f.write(tag)
        return fn

    export_model(write("v1"), str(out))
    assert (out / "weights.txt").read_text() == "v1"

    def broken(folder: str) -> None:
        write("half")(folder)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        export_model(broken, str(out))
    assert (out / "weights.txt").read_text() == "v1"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["export"]
    export_model(write("v2"), str(out))
    assert (out / "weights.txt").read_text() == "v2"


def test_export_to_an_fsspec_uri(tmp_path):
    import fsspec

    def write(folder: str) -> None:
        with open(os.path.join(folder, "a.bin"), "wb") as f:
            f.write(b"abc")

    export_model(write, "memory://bucket/run/export")
    assert fsspec.filesystem("memory").cat("/bucket/run/export/a.bin") == b"abc"


def test_a_new_loss_term_gets_its_own_column(tmp_path):
    """metrics.parquet has one column per loss term the model reports, in its order after the total."""
    log = MetricsLog(str(tmp_path / "metrics.parquet"), resume_step=0)
    log.append(StepMetrics(step=1, loss=1.0, losses={"ce_loss": 0.5, "point_loss": 0.25}, lr=1e-4, samples_per_s=2.0,
                           skipped_samples=0, skipped_shards=0))
    log.flush()
    table = pq.read_table(tmp_path / "metrics.parquet")
    assert table.column_names[:4] == ["step", "loss", "ce_loss", "point_loss"]
    assert table.column("point_loss").to_pylist() == [0.25]
