"""Real-size evaluation smoke test (needs CUDA, skipped otherwise): read-7b with random weights, bf16, scoring
640x480 synthetic shard samples through the evaluation job's `Evaluator` in both modes.

Prints the latency per query so a GPU run doubles as the issue's real-size check:
    .venv/bin/python -m pytest -q -s tests/gpu
"""

import statistics

import numpy as np
import pytest

from bench.train import synthetic_shards
from model.build import build_read
from model.config import ReadModelConfig
from pipelines.evaluate.metrics import GENERATE, TEACHER_FORCED
from pipelines.evaluate.predict import Evaluator
from pipelines.evaluate.rows import RunInfo
from pipelines.evaluate.shards import read_shard


@pytest.mark.gpu
def test_read7b_scores_real_size_samples_in_both_modes_on_gpu(tmp_path):
    root = synthetic_shards(640, 480, 8, out=tmp_path)
    model, tokenizer = build_read(ReadModelConfig(preset="read-7b", dtype="bfloat16"), device="cuda")
    evaluator = Evaluator(model, tokenizer, run=RunInfo(run_id="gpu", checkpoint="random"), device="cuda",
                          mode_of=lambda dataset: GENERATE if "fp" in dataset else TEACHER_FORCED, max_new_tokens=16)
    for folder, mode in (("refcoco-train", TEACHER_FORCED), ("refcoco_fp-train", GENERATE)):
        samples = [s for url in sorted((root / folder).glob("shard-*.tar")) for s in read_shard(str(url))][:4]
        rows = [row for sample in samples for row in evaluator.score(sample, folder)]
        assert rows and all(not row["error"] for row in rows), [row["error"] for row in rows]
        assert {row["mode"] for row in rows} == {mode}
        assert all(0 <= row["intersection"] <= row["union"] <= 640 * 480 for row in rows)
        if mode == TEACHER_FORCED:  # every teacher-forced query has a [SEG]: a similarity map and SasP points
            for row in rows:
                assert len(row["similarity"]) > 0 and np.isfinite(row["similarity"]).all()
                assert 0 < row["num_pos_points"] + row["num_neg_points"] <= model.cfg.sasp.num_points
        latencies = [row["latency_ms"] for row in rows[1:]]  # the first pays CUDA start-up
        print(f"read-7b {mode}: {len(rows)} queries, median {statistics.median(latencies):.0f} ms/query")
