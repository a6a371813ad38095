"""ADE20K (READ `dataloaders/sem_seg_dataset.py`) and LLaVA-Instruct (READ `dataloaders/vqa_dataset.py`) through
jobs.preprocess vs READ's reading."""

from __future__ import annotations

import json
import pathlib
import subprocess

import numpy as np
import pytest
from PIL import Image

from tests.conformance.expected import ADE20K_CLASSES, expected_ade20k, expected_llava, read_conversation
from tests.conformance.fixtures_real import ADE_CLASS_VALUES, build_ade20k, build_llava
from tests.conformance.jobrun import assert_conforms, run_job

READ_MIRROR = pathlib.Path("/work/.mirror/rui-qian+READ/repo")


@pytest.fixture(scope="module")
def ade_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ade_raw")
    build_ade20k(root)
    return root


@pytest.fixture(scope="module")
def ade_job(local_ray, ade_root, tmp_path_factory):
    return run_job("ade20k", ade_root, "train", tmp_path_factory.mktemp("ade_out"), workers=1)


@pytest.fixture(scope="module")
def llava_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("llava_raw")
    build_llava(root)
    return root


@pytest.fixture(scope="module")
def llava_job(local_ray, llava_root, tmp_path_factory):
    return run_job("llava_vqa", llava_root, "train", tmp_path_factory.mktemp("llava_out"), workers=1)


# ------------------------------------------------------------------------------------------------------------ ADE20K


def test_class_names_are_reads():
    assert len(ADE20K_CLASSES) == 150 == len(set(ADE20K_CLASSES))
    assert (ADE20K_CLASSES[0], ADE20K_CLASSES[12], ADE20K_CLASSES[149]) == ("wall", "person", "flag")
    if not (READ_MIRROR / "HEAD").exists():
        pytest.skip("no READ mirror to compare the copied class list with")
    text = subprocess.run(["git", "-C", str(READ_MIRROR), "show", "HEAD:dataloaders/ade20k_classes.json"],
                          capture_output=True, text=True, check=True).stdout
    assert tuple(json.loads(text)) == ADE20K_CLASSES


def test_ade20k_matches_read(ade_root, ade_job):
    assert_conforms(expected_ade20k(ade_root), ade_job, "ade20k train")


def test_ade20k_queries_are_present_classes_with_reads_names(ade_root, ade_job):
    got = {q.query_id: q.text for s in ade_job.samples for q in s.queries}
    want = {}
    for i, values in enumerate(ADE_CLASS_VALUES):
        stem = f"ADE_train_{i + 1:08d}"
        label = np.array(Image.open(ade_root / "ade20k" / "annotations" / "training" / f"{stem}.png"))
        assert set(np.unique(label).tolist()) - {0} == set(values)
        for v in values:
            want[f"{stem}:c{v - 1}"] = ADE20K_CLASSES[v - 1]
    assert got == want


def test_ade20k_ignore_is_255_where_label_is_0(ade_root, ade_job):
    stem = "ADE_train_00000001"
    label = np.array(Image.open(ade_root / "ade20k" / "annotations" / "training" / f"{stem}.png"))
    assert (label == 0).any()
    sample = [s for s in ade_job.samples if any(q.query_id.startswith(stem + ":") for q in s.queries)]
    assert len(sample) == 1
    for q in sample[0].queries:
        c = int(q.query_id.rsplit(":c", 1)[1])
        want = np.where(label == 0, 255, (label == c + 1)).astype(np.uint8)
        assert np.array_equal(q.mask, want), f"{q.query_id}: mask is not 1 at label {c + 1}, 255 at 0, else 0"


# ------------------------------------------------------------------------------------------------------------- LLaVA


def test_llava_matches_read(llava_root, llava_job):
    assert_conforms(expected_llava(llava_root), llava_job, "llava_vqa")


def test_llava_one_sample_per_item_first_turn_normalised(llava_root, llava_job):
    items = json.loads((llava_root / "llava_dataset" / "llava_instruct_150k.json").read_text())
    assert len(llava_job.samples) == len(items) == 5, "one sample per conversation item (ids repeat)"
    for s in llava_job.samples:
        assert s.conversation[0]["from"] == "human"
        assert s.conversation[0]["value"].startswith("<image>\n")
        assert sum("<image>" in t["value"] for t in s.conversation) == 1
    leading_gpt = [s for s in llava_job.samples if any("cross-country" in t["value"] for t in s.conversation)]
    assert len(leading_gpt) == 1 and len(leading_gpt[0].conversation) == 4, "the leading gpt turn is dropped"


def test_llava_turns_without_image_token_are_kept_verbatim(local_ray, tmp_path_factory):
    """READ's preprocess_multimodal rewrites (and strips) only turns that hold <image>; other turns go into the
    prompt unchanged, whitespace included."""
    root = tmp_path_factory.mktemp("llava_ws_raw")
    items = [{"id": "000000033471", "image": "000000033471.jpg", "conversations": [
        {"from": "human", "value": "What is on the table? <image> "},
        {"from": "gpt", "value": "A vase with flowers.\n"},
        {"from": "human", "value": " And the colour of the vase?"},
        {"from": "gpt", "value": "It is blue. "}]}]
    build_llava(root, items=items)
    got = run_job("llava_vqa", root, "train", tmp_path_factory.mktemp("llava_ws_out"), workers=1)
    want = read_conversation(items[0]["conversations"])
    assert want[0]["value"] == "<image>\nWhat is on the table?" and want[1]["value"] == "A vase with flowers.\n"
    assert len(got.samples) == 1
    assert got.samples[0].conversation == want
