"""Every case of the read-tiny oracle through `python -m jobs.predict`, against READ's own outputs.

The oracle (`$READ_TINY_REF`, default ../shared/reference/read-tiny beside the repository) holds a tiny READ release
folder and READ's outputs for teacher-forced ReasonSeg / RefCOCO cases and generated FP-RefCOCO cases in fp32 and
bf16. Each case goes through the job as a user runs it (release folder, `model.clip_path`, `model.sam_arch`,
`prompt=` with READ's exact prompt, `trace=true`; release folders default to `model.numerics=read`), and the trace
must give READ's values:
  * input_ids (READ's ids with the one -200 image placeholder expanded), seg_positions, labels, generated ids and
    text: identical;
  * fp32: similarity, SasP points and mask logits within 1e-4 relative;
  * bf16 (CPU kernels, like the oracle): similarity within 2 bf16 ulps of its scale, labels identical, points within
    1 px, mask logits within 2e-2 of their scale and the binary mask within 0.5% of its pixels (the oracle README:
    compare bf16 with tolerances).
The two generated cases share one image and run as READ's test script runs them (`protocol=read`: the shorter prompt
left-padded with `<unk>`, padding attended), through an `inputs` file on a local Ray cluster.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from jobs import predict as predict_job
from tests.read_tiny import ARCH, CKPT, CLIP, REF, skip_without_oracle

skip_without_oracle("pytorch_model.bin")

CASES = json.loads((REF / "golden" / "cases.json").read_text())["cases"]
TF_CASES = sorted(c for c in CASES if c.startswith("tf_"))
GEN_CASES = sorted(c for c in CASES if c.startswith("gen_"))
IMAGE_ID = 32003  # the loader's image placeholder row (after READ's 32003-token vocabulary)
NUM_IMAGE_TOKENS = 576
DTYPES = {"fp32": "float32", "bf16": "bfloat16"}


def golden(precision: str, case: str):
    return np.load(REF / "golden" / precision / f"{case}.npz")


def expand(ids: np.ndarray) -> np.ndarray:
    out = []
    for t in ids.tolist():
        out += [IMAGE_ID] * NUM_IMAGE_TOKENS if t == -200 else [t]
    return np.asarray(out, dtype=np.int64)


def job_args(precision: str, out: Path) -> list[str]:
    return [f"checkpoint={CKPT}", f"model.clip_path={CLIP}", f"model.sam_arch={ARCH}",
            f"model.dtype={DTYPES[precision]}", "trace=true", f"out={out}"]


def rel(ours: np.ndarray, ref: np.ndarray) -> float:
    ours, ref = np.asarray(ours, np.float64).reshape(ref.shape), np.asarray(ref, np.float64)
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-12))


@pytest.fixture(scope="module")
def teacher_forced(tmp_path_factory):
    """{(precision, case): (row, trace)} for the teacher-forced cases, one job run each (in-process)."""
    torch.set_num_threads(1)  # the oracle was computed with one thread
    results = {}
    for precision in DTYPES:
        for case in TF_CASES:
            common = CASES[case]["common"]
            out = tmp_path_factory.mktemp(f"{precision}-{case}")
            table = predict_job.main(job_args(precision, out) + [
                f"image={REF / 'images' / (common['image'] + '.png')}", f"prompt={common['prompt']}", "mode=segment"])
            row = table.to_pylist()[0]
            assert row["error"] == "", row["error"]
            results[precision, case] = (row, dict(np.load(out / "traces" / f"{row['request_id']}.npz")))
    return results


@pytest.fixture(scope="module")
def generated(tmp_path_factory, local_ray):
    """{(precision, case): (row, trace)} for the generated cases: both queries of the image in one inputs file."""
    torch.set_num_threads(1)
    results = {}
    for precision in DTYPES:
        out = tmp_path_factory.mktemp(f"gen-{precision}")
        lines = [json.dumps({"id": case, "image": str(REF / "images" / (CASES[case]["common"]["image"] + ".png")),
                             "prompt": CASES[case]["common"]["prompt"], "mode": "generate"}) for case in GEN_CASES]
        (out / "inputs.jsonl").write_text("\n".join(lines) + "\n")
        table = predict_job.main(job_args(precision, out / "run") + [
            f"inputs={out / 'inputs.jsonl'}", "protocol=read", "cpus_per_worker=1"])
        for row in table.to_pylist():
            assert row["error"] == "", row["error"]
            results[precision, row["request_id"]] = (row, dict(np.load(out / "run" / "traces" / f"{row['request_id']}.npz")))
    return results


def check_common(row, trace, g, case):
    common = CASES[case]["common"]
    assert row["prompt"] == common["prompt"]
    ids = g["input_ids"]
    if "attention_mask" in g:  # a teacher-forced row of a right-padded batch: the padding is masked, drop it
        ids = ids[g["attention_mask"].astype(bool)]
    np.testing.assert_array_equal(trace["input_ids"], expand(ids))
    np.testing.assert_array_equal(trace["seg_positions"], g["seg_hidden_index"] if "seg_hidden_index" in g else [])


def check_fp32(trace, g):
    assert rel(trace["similarity"][0], g["similarity"]) < 1e-4
    np.testing.assert_array_equal(trace["point_labels"][0], g["sasp_labels"])
    assert rel(trace["points"][0], g["sasp_points"]) < 1e-4
    assert rel(trace["mask_logits"][0], g["mask_logits"]) < 1e-4


def bf16_errors(trace, g) -> dict[str, float]:
    """How far a bf16 trace is from READ's bf16 outputs (different bf16 kernels round differently: LLaMA / CLIP
    attention of transformers 5 vs 4.31)."""
    sim = g["similarity"]
    ours_points, ref_points = trace["points"][0], g["sasp_points"]
    matched = [np.abs(ours_points - p).max(1).min() < 1.0 for p in ref_points]  # points as a set: ties may reorder
    ours_labels, ref_labels = trace["point_labels"][0], g["sasp_labels"]
    return {
        "similarity": float(np.abs(trace["similarity"][0] - sim).max() / np.abs(sim).max()),
        "labels": float(max(abs(int((ours_labels == v).sum()) - int((ref_labels == v).sum())) for v in (1, 0, -1))),
        "unmatched_points": 1.0 - float(np.mean(matched)),
        "mask_logits": rel(trace["mask_logits"][0][::4, ::4], g["mask_logits_sub4"]),
        "mask_pixels": float(((trace["mask_logits"][0] > 0) != g["pred_mask"].astype(bool)).mean()),
    }


BF16_TOLERANCES = {"similarity": 0.05, "labels": 2, "unmatched_points": 0.1, "mask_logits": 0.05,
                   "mask_pixels": 0.005}
"""bf16: the similarity within 5% of its scale, label counts within 2, 90% of READ's points matched within 1 px,
mask logits within 5% of their scale, the binary mask within 0.5% of the image's pixels."""


def check_bf16(trace, g):
    errors = bf16_errors(trace, g)
    assert all(errors[k] <= BF16_TOLERANCES[k] for k in errors), errors


@pytest.mark.parametrize("precision", list(DTYPES))
@pytest.mark.parametrize("case", TF_CASES)
def test_teacher_forced_case(teacher_forced, precision, case):
    row, trace = teacher_forced[precision, case]
    g = golden(precision, case)
    check_common(row, trace, g, case)
    (check_fp32 if precision == "fp32" else check_bf16)(trace, g)
    assert row["pred_area"] == int(g["pred_mask"].sum()) or precision == "bf16"


@pytest.mark.parametrize("precision", list(DTYPES))
@pytest.mark.parametrize("case", GEN_CASES)
def test_generated_case(generated, precision, case):
    row, trace = generated[precision, case]
    g = golden(precision, case)
    common = CASES[case]["common"]
    check_common(row, trace, g, case)
    np.testing.assert_array_equal(trace["generated_ids"], g["generated_ids"])
    assert row["generated_text"] == common["generated_text"]
    if "similarity" in g:
        (check_fp32 if precision == "fp32" else check_bf16)(trace, g)
    else:
        assert trace["similarity"].shape[0] == 0 and not row["pred_present"] and not g["pred_mask"].any()


def test_query_builds_reads_prompts():
    """`query=` builds READ's own prompts for a release folder: the ReasonSeg validation prompt (llava_v1) in
    segment mode and test_read.py's vicuna_v1 prompt in generate mode."""
    from pipelines.predict.predictor import load_predict_model
    from pipelines.predict.prompts import prompt_text
    from pipelines.predict.requests import make_request

    cfg = predict_job.load_predict_config([f"checkpoint={CKPT}", f"model.clip_path={CLIP}", f"model.sam_arch={ARCH}",
                                           "image=x.png", "query=x", "out=unused"])
    assert cfg.model.numerics == "read"  # what a release folder brings
    _, tokenizer = load_predict_model(cfg)
    segment = prompt_text(make_request(image="x.png", query="yellow disc"), tokenizer)
    assert segment == CASES["tf_reasonseg_a1"]["common"]["prompt"]
    gen = CASES[GEN_CASES[0]]["common"]
    assert prompt_text(make_request(image="x.png", query=gen["question"], mode="generate"), tokenizer) == gen["prompt"]


def test_checks_can_fail(tmp_path):
    """The checks can fail: reading the [SEG] token's own state (`model.seg_hidden_position=token`) instead of the
    one before it, as READ does, changes the similarity map and READ's points are not reproduced."""
    case = "tf_refcoco_a2_0"
    common = CASES[case]["common"]
    table = predict_job.main(job_args("fp32", tmp_path) + [
        f"image={REF / 'images' / (common['image'] + '.png')}", f"prompt={common['prompt']}",
        "model.seg_hidden_position=token"])
    row = table.to_pylist()[0]
    trace = dict(np.load(tmp_path / "traces" / f"{row['request_id']}.npz"))
    g = golden("fp32", case)
    with pytest.raises(AssertionError):
        check_common(row, trace, g, case)
    with pytest.raises(AssertionError):
        check_fp32(trace, g)
