"""Vision-tower pretraining: labels match the drawn scenes, the config refuses what it cannot do, the tower learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from demo.vision import VisionPretrainConfig, pretrain_tower, pretrain_vision
from demo.vision.scenes import BACKGROUND, COLOUR_CLASSES, SHAPE_CLASSES, cell_cover, scene_batch
from model.build import build_read
from model.config import ReadModelConfig
from pipelines.synth.scene import sample_scene


def test_cell_cover_is_the_covered_fraction_of_each_cell():
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[0:4, 0:4] = 1  # the whole top-left cell of a 2x2 grid
    mask[4:6, 4:8] = 1  # half of the bottom-right cell
    np.testing.assert_allclose(cell_cover(mask, 2), [[1.0, 0.0], [0.0, 0.5]])
    assert cell_cover(np.ones((10, 10), dtype=np.uint8), 3).min() == 1.0  # uneven cells still cover fully


def test_scene_batch_labels_each_patch_with_the_object_covering_it():
    cfg = VisionPretrainConfig(image_size=[48, 48], max_objects=3)
    batch = scene_batch(np.random.default_rng(5), 4, cfg, clip_size=112, grid=8)
    assert batch.pixels.shape == (4, 3, 112, 112)
    assert batch.colour.shape == batch.shape.shape == batch.objects.shape == (4, 64)
    rng = np.random.default_rng(5)  # the same draws again
    for i in range(4):
        scene = sample_scene(rng, width=48, height=48, min_objects=2, max_objects=3, noise=cfg.noise)
        for cell in range(64):
            r, c = divmod(cell, 8)
            covers = [float(o.mask[6 * r:6 * r + 6, 6 * c:6 * c + 6].mean()) for o in scene.objects]
            owner = int(batch.objects[i, cell])
            if max(covers) < cfg.min_cover:
                assert owner == 0 and batch.colour[i, cell] == batch.shape[i, cell] == BACKGROUND
                continue
            obj = scene.objects[int(np.argmax(covers))]
            assert owner == obj.index + 1
            assert COLOUR_CLASSES[batch.colour[i, cell]] == obj.colour
            assert SHAPE_CLASSES[batch.shape[i, cell]] == obj.shape
        largest = max(scene.objects, key=lambda o: o.area)
        assert (batch.objects[i] == largest.index + 1).any()


@pytest.mark.parametrize(("override", "match"), [
    ({"model": {"preset": "read-7b"}}, "tiny preset only"),
    ({"steps": 0}, "steps must be > 0"),
    ({"image_size": [16, 16]}, "image_size"),
    ({"image_size": [64, 48]}, "must be square"),
    ({"min_cover": 0.0}, "min_cover"),
    ({"min_objects": 1}, "min_objects"),
])
def test_config_refuses_what_it_cannot_do(override, match):
    kwargs = dict(override)
    if "model" in kwargs:
        kwargs["model"] = ReadModelConfig(**kwargs["model"])
    with pytest.raises(ValueError, match=match):
        VisionPretrainConfig(**kwargs)


def test_a_short_pretraining_names_patch_colours_above_the_majority_answer():
    model, _ = build_read(ReadModelConfig())
    tower = model.llava.model.vision_tower
    before = {k: v.clone() for k, v in tower.state_dict().items()}
    cfg = VisionPretrainConfig(steps=120, batch_size=16, eval_every=60, eval_scenes=64, image_size=[48, 48])
    rows = pretrain_tower(cfg, tower, feature_layer=model.llava.config.vision_feature_layer,
                          clip_size=model.clip_image_size, log=lambda row: None)
    assert [r["step"] for r in rows] == [60, 120]
    assert rows[-1]["acc_colour"] > rows[-1]["majority_colour"] + 0.1, rows[-1]
    assert set(rows[-1]) >= {f"{kind}_{group}" for kind in ("acc", "majority")
                             for group in ("patch", "colour", "shape", "object_shape")}
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert any(not torch.equal(before[k], v) for k, v in tower.state_dict().items())


def test_the_pretrained_tower_is_a_function_of_the_config_not_of_earlier_random_draws():
    """A Ray worker runs one task after another (the demo's augmentation seeds torch per sample), so the tower's
    random init must come from cfg.seed, not from the global generator's state when the task starts."""
    cfg = VisionPretrainConfig(steps=2, batch_size=4, eval_every=2, eval_scenes=8, image_size=[48, 48])
    towers = []
    for earlier in (1, 2):
        torch.manual_seed(earlier)
        towers.append(pretrain_vision(cfg, log=lambda row: None)[0])
    assert all(torch.equal(towers[0][k], towers[1][k]) for k in towers[0])
