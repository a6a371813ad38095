"""The read-tiny oracle's ReasonSeg cases through `python -m jobs.evaluate protocol=read`, on a local Ray cluster.

Each oracle image becomes a one-image ReasonSeg shard (its query, READ's ground-truth mask with 255 = ignore); the
release folder is evaluated as published. READ's validation prompt is fully determined for ReasonSeg (text[0], the
fixed LISA templates), so the rows must hold READ's prompt, READ's [SEG] similarity map, SasP points and labels, and
READ's binary mask (fp32, within 1e-4); the row's intersection and union must equal the foreground class of READ's
`intersectionAndUnionGPU` in validate(). 1 and 2 workers give identical tables. (The RefCOCO and FP-RefCOCO cases
depend on READ's template draws, which are given as strings: they go through `jobs.predict` with `prompt=` in
test_read_predict.py, and the protocol's builder is checked against them in test_read_protocol_prompts.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from jobs import evaluate as evaluate_job
from pipelines.evaluate.metrics import decode_rle
from pipelines.evaluate.protocol import PROTOCOL_DIR, read_templates
from pipelines.results import load
from schemas.sample import Query, ShardSample, make_key
from tests.fixtures.evaluate import write_eval_shard
from tests.read_tiny import CKPT, REF, match_template, skip_without_oracle, split_prompt

skip_without_oracle("pytorch_model.bin")
CASES = json.loads((REF / "golden" / "cases.json").read_text())["cases"]
REASONSEG = sorted(c for c in CASES if c.startswith("tf_reasonseg"))
SHORT = ("<im_end>\nWhat is ", " in this image? Please output segmentation mask.")
LONG_END = " Please output segmentation mask."


def query_of(case: str) -> Query:
    """The ReasonSeg query READ turned into the case's prompt, with READ's ground-truth mask."""
    prompt = CASES[case]["common"]["prompt"]
    question = prompt.split("<im_end>\n", 1)[1].split(" ASSISTANT:", 1)[0]
    mask = np.load(REF / "golden" / "fp32" / f"{case}.npz")["gt_mask"].astype(np.uint8)
    if question.startswith(SHORT[0].removeprefix("<im_end>\n")):
        text = question.removeprefix(SHORT[0].removeprefix("<im_end>\n")).removesuffix(SHORT[1])
        return Query(query_id=f"{case}:0", text=text, mask=mask)
    return Query(query_id=f"{case}:0", text=question.removesuffix(LONG_END), is_sentence=True, mask=mask)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("oracle_shards")
    for i, case in enumerate(REASONSEG):
        image = REF / "images" / f"{CASES[case]['common']['image']}.png"
        h, w = CASES[case]["common"]["image_size_hw"]
        extra_text = Query(query_id=f"{case}:1", text="a second text entry READ does not score",
                           is_sentence=True, mask=query_of(case).mask)
        sample = ShardSample(key=make_key("ReasonSeg", "val", i), dataset="ReasonSeg", split="val",
                             image_bytes=image.read_bytes(), image_format="png", height=h, width=w,
                             queries=[query_of(case), extra_text], source=str(image))
        write_eval_shard(root / "ReasonSeg" / "val" / f"shard-{i:06d}.tar", [sample])
    return root


@pytest.fixture(scope="module")
def runs(shards, local_ray, tmp_path_factory) -> dict[int, Path]:
    torch.set_num_threads(1)
    out = {}
    for workers in (1, 2):
        out[workers] = tmp_path_factory.mktemp(f"eval{workers}")
        evaluate_job.main([f"checkpoint={CKPT}", f"model.clip_path={REF / 'clip-vit-tiny-patch14-336'}",
                           f"model.sam_arch={REF / 'tiny_arch.json'}", "protocol=read", f"data=[{shards}]",
                           f"out={out[workers]}", f"num_workers={workers}"])
    return out


def test_reads_reasonseg_validation_through_evaluate(runs):
    summary, queries = load(str(runs[1]))
    assert len(queries) == len(REASONSEG) and (queries["error"] == "").all()  # text[0] only
    assert set(summary["protocol"]) == {"read"} and summary["checkpoint_hash"].str.startswith("pytorch_model").all()
    for case in REASONSEG:
        row = queries[queries["query_id"] == f"{case}:0"].iloc[0]
        g = np.load(REF / "golden" / "fp32" / f"{case}.npz")
        assert row["prompt"] == CASES[case]["common"]["prompt"]
        sim = np.asarray(row["similarity"], np.float64)
        assert np.abs(sim - g["similarity"]).max() <= 1e-4 * np.abs(g["similarity"]).max()
        np.testing.assert_array_equal(np.asarray(row["point_labels"]), g["sasp_labels"])
        points = np.asarray(row["points_xy"], np.float64).reshape(-1, 2)
        assert np.abs(points - g["sasp_points"]).max() <= 1e-4 * np.abs(g["sasp_points"]).max()
        np.testing.assert_array_equal(decode_rle(row["pred_mask_rle"]), g["pred_mask"].astype(bool))
        read_metrics = CASES[case]["per_precision"]["fp32"]["values"]["metrics_validate"]
        assert (row["intersection"], row["union"]) == (read_metrics["intersection"][1], read_metrics["union"][1])


def test_one_and_two_workers_identical(runs):
    _, one = load(str(runs[1]))
    _, two = load(str(runs[2]))
    pd.testing.assert_frame_equal(one.drop(columns=["latency_ms"]), two.drop(columns=["latency_ms"]))


# ------------------------------------------------------------------- the cases whose templates READ drew at random
def template_case(case: str) -> tuple[Query, dict]:
    """The query READ's prompt for `case` was made from, and READ's template choices for it (recovered from the
    drawn strings, which the oracle gives as they are)."""
    t = read_templates()
    common = CASES[case]["common"]
    question, answer = split_prompt(common["prompt"])
    qi, text = match_template(t["short_question"], question)
    exists = bool(common.get("gt_exists", common.get("exists", True)))
    kind = "short_answer" if exists else "correct_answer"
    ai = match_template(t[kind], answer)[0] if answer else 0  # generation: the answer draw is never shown
    g = np.load(REF / "golden" / "fp32" / f"{case}.npz")
    # READ's test script keeps no GT for generated cases; any mask stands in (only the prediction is compared)
    mask = (g["gt_mask"] if "gt_mask" in g else g["pred_mask"]).astype(np.uint8) if exists else None
    query = Query(query_id=case, text=text, exists=exists, mask=mask if exists else None,
                  gt_sent=None if exists else "green triangle")
    return query, {"question": qi, "answer": ai}


@pytest.fixture(scope="module")
def drawn_runs(local_ray, tmp_path_factory) -> Path:
    """RefCOCO (teacher-forced, image a2) and FP-RefCOCO (generated, image a3, READ's padding) through
    jobs.evaluate with the read protocol, READ's template choices pinned (`template_choices_file`)."""
    root = tmp_path_factory.mktemp("drawn")
    choices = {}
    for dataset, image, cases in (("refcoco", "a2", ["tf_refcoco_a2_0", "tf_refcoco_a2_1"]),
                                  ("fprefcoco", "a3", ["gen_fprefcoco_a3_0", "gen_fprefcoco_a3_1"])):
        queries = []
        for case in cases:
            query, pinned = template_case(case)
            queries.append(query)
            choices[case] = pinned
        h, w = CASES[cases[0]]["common"]["image_size_hw"]
        png = REF / "images" / f"{image}.png"
        sample = ShardSample(key=make_key(dataset, "val", 0), dataset=dataset, split="val",
                             image_bytes=png.read_bytes(), image_format="png", height=h, width=w, queries=queries,
                             source=str(png))
        write_eval_shard(root / "data" / dataset / "val" / "shard-000000.tar", [sample])
    (root / "choices.json").write_text(json.dumps(choices))
    (root / "read_pinned.yaml").write_text((PROTOCOL_DIR / "read.yaml").read_text()
                                           + "template_choices_file: choices.json\n")
    torch.set_num_threads(1)
    out = root / "eval"
    evaluate_job.main([f"checkpoint={CKPT}", f"model.clip_path={REF / 'clip-vit-tiny-patch14-336'}",
                       f"model.sam_arch={REF / 'tiny_arch.json'}", f"protocol={root / 'read_pinned.yaml'}",
                       f"data=[{root / 'data'}]", f"out={out}", "num_workers=1"])
    return out


def test_drawn_template_cases_through_evaluate(drawn_runs):
    _, queries = load(str(drawn_runs))
    assert (queries["error"] == "").all() and len(queries) == 4
    for case in ["tf_refcoco_a2_0", "tf_refcoco_a2_1", "gen_fprefcoco_a3_0", "gen_fprefcoco_a3_1"]:
        row = queries[queries["query_id"] == case].iloc[0]
        common = CASES[case]["common"]
        g = np.load(REF / "golden" / "fp32" / f"{case}.npz")
        assert row["prompt"] == common["prompt"], case
        assert row["mode"] == ("generate" if case.startswith("gen_") else "teacher_forced")
        if case.startswith("gen_"):
            assert row["generated_text"] == common["generated_text"], case
        np.testing.assert_array_equal(decode_rle(row["pred_mask_rle"]), g["pred_mask"].astype(bool))
        if "similarity" in g:
            sim = np.asarray(row["similarity"], np.float64)
            assert np.abs(sim - g["similarity"]).max() <= 1e-4 * np.abs(g["similarity"]).max(), case
            np.testing.assert_array_equal(np.asarray(row["point_labels"]), g["sasp_labels"])
            points = np.asarray(row["points_xy"], np.float64).reshape(-1, 2)
            assert np.abs(points - g["sasp_points"]).max() <= 1e-4 * np.abs(g["sasp_points"]).max(), case
