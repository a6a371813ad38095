"""bench.real_size_eval's measurement on the CPU with the tiny preset (the figures need a GPU): every mode scores
real shard samples without errors and reports a rate."""

from __future__ import annotations

import pathlib

from bench.real_size_eval import measure
from model.config import ReadModelConfig, SaspConfig


def test_measure_scores_every_mode(train_shards_root: pathlib.Path):
    figures = measure(ReadModelConfig(preset="tiny", sasp=SaspConfig(num_points=4)), device="cpu", images=2, max_new_tokens=3,
                      root=train_shards_root)
    for name in ("teacher_forced", "generate_single", "generate_batched"):
        assert figures[name] > 0 and figures[f"{name}_queries"] > 0
    assert figures["generate_single_queries"] == figures["generate_batched_queries"]
