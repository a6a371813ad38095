"""Vision-tower pretraining: labels match the drawn scenes, the config refuses what it cannot do, the tower learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.build import build_read
from model.config import ReadModelConfig
from pipelines.synth.palette import COLOURS, SHAPES
from pipelines.synth.scene import sample_scene
from pipelines.vision import VisionPretrainConfig, pretrain_tower
from pipelines.vision.scenes import label_groups, label_names, scene_batch


def test_label_names_and_groups_line_up():
    names = label_names(pairs=True)
    groups = label_groups(pairs=True)
    assert names[groups["colour"]] == list(COLOURS) and names[groups["shape"]] == list(SHAPES)
    assert len(names[groups["pair"]]) == len(COLOURS) * len(SHAPES) and "red circle" in names[groups["pair"]]
    assert label_names(pairs=False) == [*COLOURS, *SHAPES] and "pair" not in label_groups(pairs=False)


def test_scene_batch_labels_are_the_drawn_objects():
    cfg = VisionPretrainConfig(image_size=[48, 48], max_objects=3)
    pixels, labels = scene_batch(np.random.default_rng(5), 4, cfg, clip_size=112)
    assert pixels.shape == (4, 3, 112, 112) and labels.shape == (4, len(label_names(pairs=True)))
    rng, names = np.random.default_rng(5), label_names(pairs=True)  # the same draws again
    for i in range(4):
        scene = sample_scene(rng, width=48, height=48, min_objects=2, max_objects=3, noise=cfg.noise)
        want = {o.colour for o in scene.objects} | {o.shape for o in scene.objects} | {
            f"{o.colour} {o.shape}" for o in scene.objects}
        assert {names[j] for j in torch.nonzero(labels[i]).flatten().tolist()} == want


@pytest.mark.parametrize(("override", "match"), [
    ({"model": {"preset": "read-7b"}}, "tiny preset only"),
    ({"steps": 0}, "steps must be > 0"),
    ({"image_size": [16, 64]}, "image_size"),
    ({"min_objects": 1}, "min_objects"),
])
def test_config_refuses_what_it_cannot_do(override, match):
    kwargs = dict(override)
    if "model" in kwargs:
        kwargs["model"] = ReadModelConfig(**kwargs["model"])
    with pytest.raises(ValueError, match=match):
        VisionPretrainConfig(**kwargs)


def test_a_short_pretraining_learns_colours_above_the_majority_answer():
    model, _ = build_read(ReadModelConfig())
    tower = model.llava.model.vision_tower
    before = {k: v.clone() for k, v in tower.state_dict().items()}
    cfg = VisionPretrainConfig(steps=120, batch_size=16, eval_every=60, eval_scenes=64, image_size=[48, 48])
    rows = pretrain_tower(cfg, tower, feature_layer=model.llava.config.vision_feature_layer,
                          clip_size=model.clip_image_size, log=lambda row: None)
    assert [r["step"] for r in rows] == [60, 120]
    assert rows[-1]["acc_colour"] > rows[-1]["majority_colour"] + 0.1, rows[-1]
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert any(not torch.equal(before[k], v) for k, v in tower.state_dict().items())
