"""jobs.predict end to end with our own export (tiny, random weights): one image in-process, and a JSON-lines file
of requests on a real local Ray cluster, with an unreadable image among them, then resumed."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from jobs import predict as predict_job
from pipelines.evaluate.metrics import decode_rle


@pytest.fixture(scope="module")
def export_dir(tiny_export_dir) -> str:
    return tiny_export_dir


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for name, (h, w) in {"a.png": (40, 56), "b.jpg": (48, 32)}.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / name)
    (root / "broken.jpg").write_bytes(b"not an image")
    return root


def test_one_image(export_dir, images, tmp_path):
    out = tmp_path / "one"
    table = predict_job.main([f"checkpoint={export_dir}", f"image={images / 'a.png'}", "query=the red box",
                              "trace=true", f"out={out}"])
    row = table.to_pylist()[0]
    assert row["error"] == "" and row["mode"] == "segment" and row["num_seg"] == 1
    assert "the red box" in row["prompt"] and row["prompt"].endswith("</s>")
    mask = np.asarray(Image.open(out / "masks" / f"{row['request_id']}.png"))
    assert mask.shape == (40, 56) and set(np.unique(mask)) <= {0, 255}
    np.testing.assert_array_equal(mask > 0, decode_rle(row["pred_mask_rle"]))
    assert Image.open(out / "overlays" / f"{row['request_id']}.png").size == (56, 40)
    trace = np.load(out / "traces" / f"{row['request_id']}.npz")
    assert trace["input_ids"].dtype == np.int64 and trace["seg_positions"].shape == (1,)
    assert trace["similarity"].shape[0] == 1 and trace["mask_logits"].shape == (1, 40, 56)
    assert trace["points"].shape[:2] == trace["point_labels"].shape
    saved = pd.read_parquet(out / "predictions.parquet")
    assert list(saved["request_id"]) == [row["request_id"]]
    assert (out / "config.yaml").read_text().count("query: the red box") == 1


def test_inputs_on_ray_with_a_bad_image_then_resumed(export_dir, images, local_ray, tmp_path):
    requests = [
        {"id": "a-seg", "image": "a.png", "query": "the red box"},
        {"id": "b-gen", "image": "b.jpg", "query": "the cat", "mode": "generate"},
        {"id": "broken", "image": "broken.jpg", "query": "anything"},
        {"id": "a-prompt", "image": "a.png", "mode": "generate",
         "prompt": "A chat. USER: <image>\nIs there a box? ASSISTANT:"},
    ]
    inputs = images / "requests.jsonl"
    inputs.write_text("\n".join(json.dumps(r) for r in requests) + "\n")
    out = tmp_path / "many"
    args = [f"checkpoint={export_dir}", f"inputs={inputs}", "num_workers=2", "max_new_tokens=3", f"out={out}"]
    rows = {r["request_id"]: r for r in predict_job.main(args).to_pylist()}
    assert list(rows) == ["a-seg", "b-gen", "broken", "a-prompt"]  # the file's order
    assert "broken.jpg" in rows["broken"]["error"] and rows["broken"]["height"] == 0
    assert all(rows[k]["error"] == "" for k in ("a-seg", "b-gen", "a-prompt"))
    assert rows["a-prompt"]["prompt"] == requests[3]["prompt"] and rows["b-gen"]["mode"] == "generate"
    assert not (out / "masks" / "broken.png").exists() and (out / "masks" / "a-seg.png").exists()

    before = {p.name: p.stat().st_mtime_ns for p in (out / "parts").iterdir()}
    (out / "parts" / "b-gen.parquet").unlink()
    resumed = {r["request_id"]: r for r in predict_job.main(args).to_pylist()}
    after = {p.name: p.stat().st_mtime_ns for p in (out / "parts").iterdir()}
    assert after["a-seg.parquet"] == before["a-seg.parquet"]  # done requests were not redone
    assert after["b-gen.parquet"] and resumed["b-gen"]["generated_text"] == rows["b-gen"]["generated_text"]
    with pytest.raises(SystemExit, match="other settings"):
        predict_job.main(args[:-2] + ["max_new_tokens=5", f"out={out}"])


def test_bad_requests_name_the_fix(export_dir, images, tmp_path):
    with pytest.raises(SystemExit, match="query=.*or prompt=.*not both"):
        predict_job.main([f"checkpoint={export_dir}", f"image={images / 'a.png'}", "query=x", "prompt=y",
                          f"out={tmp_path}"])
    bad = images / "bad.jsonl"
    bad.write_text('{"image": "a.png", "query": "x"}\n{"image": "a.png"}\n')
    with pytest.raises(SystemExit, match=r"bad.jsonl line 2: give exactly one of query or prompt"):
        predict_job.main([f"checkpoint={export_dir}", f"inputs={bad}", f"out={tmp_path / 'x'}"])
    with pytest.raises(SystemExit, match="does not exist"):
        predict_job.main([f"checkpoint={tmp_path / 'nowhere'}", f"image={images / 'a.png'}", "query=x",
                          f"out={tmp_path / 'y'}"])
