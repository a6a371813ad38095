"""The per-step training metrics table (`<run_dir>/metrics.parquet`) and the rank-0 progress line.

One row per optimizer step. Rank 0 keeps the rows in memory and rewrites the whole file atomically (temporary name,
then rename) every `log_every` steps and at each checkpoint; on resume it reloads the file and drops the rows after
the restored step, so a restarted run never duplicates a step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pyarrow as pa

from pipelines import storage
from schemas.arrow import versioned

METRICS_FILE = "metrics.parquet"

READ_LOSSES = ("ce_loss", "bce_loss", "dice_loss")
"""The loss terms `model.read.READ.forward` reports (ReadOutput.losses)."""


def metrics_schema(loss_names: tuple[str, ...] = READ_LOSSES) -> pa.Schema:
    """Schema of metrics.parquet: one column per loss term of the model (unweighted), after the weighted total."""
    return versioned(
        pa.schema(
            [
                ("step", pa.int64()),  # optimizer step, 1-based
                ("loss", pa.float64()),  # weighted total, mean over ranks and micro-batches
                *[(name, pa.float64()) for name in loss_names],  # each term, unweighted, same mean
                ("lr", pa.float64()),  # learning rate used by this step's update
                ("samples_per_s", pa.float64()),  # images per second, all ranks together
                ("skipped_samples", pa.int64()),  # bad samples skipped by the loader during this step, all ranks
                ("skipped_shards", pa.int64()),  # unreadable/truncated shards skipped during this step, all ranks
            ]
        )
    )


METRICS_SCHEMA = metrics_schema()
"""Schema of metrics.parquet for READ's losses."""


@dataclass(kw_only=True)
class StepMetrics:
    """One row of metrics.parquet (`losses` becomes one column per term)."""

    step: int
    loss: float
    losses: dict[str, float]
    lr: float
    samples_per_s: float
    skipped_samples: int
    skipped_shards: int

    def row(self) -> dict[str, float | int]:
        out = asdict(self)
        losses = out.pop("losses")
        return {"step": out.pop("step"), "loss": out.pop("loss"), **losses, **out}


class MetricsLog:
    """Rows of metrics.parquet for one run; only rank 0 creates one.

    Args:
        uri: the metrics.parquet path or URI.
        resume_step: rows with step > resume_step (written after the checkpoint we resume from) are dropped.
    """

    def __init__(self, uri: str, *, resume_step: int) -> None:
        self.uri = uri
        self.rows: list[dict] = []
        if resume_step > 0 and storage.exists(uri):
            kept = storage.read_parquet(uri).to_pylist()
            self.rows = [r for r in kept if r["step"] <= resume_step]

    def append(self, row: StepMetrics) -> None:
        if self.rows and row.step <= self.rows[-1]["step"]:
            raise AssertionError(f"metrics step {row.step} after step {self.rows[-1]['step']}")
        self.rows.append(row.row())

    def flush(self) -> None:
        """Rewrite the file atomically with every row so far."""
        names = tuple(k for k in self.rows[0] if k.endswith("_loss")) if self.rows else READ_LOSSES
        table = pa.Table.from_pylist(self.rows, schema=metrics_schema(names))
        storage.atomic_write_parquet(self.uri, table)


def format_progress(row: StepMetrics, *, total_steps: int, eta_s: float) -> str:
    """The rank-0 progress line: step, losses, samples/s and ETA."""
    hours, rest = divmod(int(max(eta_s, 0.0)), 3600)
    terms = " ".join(f"{name.removesuffix('_loss')} {value:.4f}" for name, value in row.losses.items())
    return (
        f"step {row.step}/{total_steps} loss {row.loss:.4f} ({terms}) lr {row.lr:.3g} {row.samples_per_s:.2f} "
        f"samples/s ETA {hours:d}:{rest // 60:02d}:{rest % 60:02d}"
    )
