"""model.read_release.load_read_release vs READ's own outputs (the read-tiny oracle, set A, fp32 goldens).

The oracle (`$READ_TINY_REF`, default ../shared/reference/read-tiny beside the repository) holds a tiny READ
release folder exactly as READ publishes one (`READ-LLaVA-tiny/`: bf16 pytorch_model.bin without the vision tower,
config.json, READ's tokenizer files), its CLIP folder, `tiny_arch.json`, and READ's intermediate values computed by
READ's code in fp32
(`golden/fp32/*.npz`). Loaded with no preset, our model must reproduce them stage by stage: CLIP features, projected
features, last-layer LLM states on READ's expanded sequence, the [SEG] prompt embedding, the similarity map and the
SAM image embedding. Fast (a few seconds), no Ray. `test_mutations_are_detected` checks that the comparisons can fail.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model.read_release import expand_read_ids, infer_sam_shape, load_read_release, read_release_state_dict
from tests.read_tiny import ARCH, CKPT, CLIP, REF, skip_without_oracle

skip_without_oracle("pytorch_model.bin")

GOLD = REF / "golden" / "fp32"
CASES = json.loads((REF / "golden" / "cases.json").read_text())["cases"]
TF_CASES = sorted(c for c in CASES if c.startswith("tf_"))
IMAGES = sorted({CASES[c]["common"]["image"] for c in CASES})
RTOL = 1e-4
PIXEL_MEAN = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
PIXEL_STD = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)


def rel_err(ours: torch.Tensor, ref) -> float:
    ref = torch.as_tensor(np.asarray(ref), dtype=torch.float32)
    ours = ours.detach().float().reshape(ref.shape)
    return float((ours - ref).abs().max() / ref.abs().max().clamp_min(1e-12))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return load_read_release(CKPT, clip_path=str(CLIP), sam_arch=str(ARCH))


def clip_pixels(img: str) -> torch.Tensor:
    return torch.from_numpy(np.load(REF / "golden" / "inputs" / f"{img}.npz")["clip_pixel_values"])[None]


def image_golden(img: str):
    return np.load(GOLD / f"image_{img}.npz")


# ---------------------------------------------------------------------------------------------------- stage checks
def clip_features(model, img: str) -> torch.Tensor:
    tower = model.llava.model.vision_tower
    out = tower(pixel_values=clip_pixels(img), output_hidden_states=True)
    return out.hidden_states[model.llava.config.vision_feature_layer][0, 1:]


def projected_features(model, img: str) -> torch.Tensor:
    return model.llava.model.get_image_features(pixel_values=clip_pixels(img)).pooler_output[0]


def case_states(model, case: str) -> dict[str, float]:
    """Relative errors of every teacher-forced stage of `case` against READ's fp32 outputs."""
    g = np.load(GOLD / f"{case}.npz")
    common = CASES[case]["common"]
    ids = expand_read_ids(torch.from_numpy(g["input_ids"]), model.image_token_id, model.num_image_tokens)[None]
    mask = torch.from_numpy(g["attention_mask_expanded"].astype(np.int64))[None]
    assert ids.shape[1] == common["hidden_last_len"] == mask.shape[1]
    hidden = model.hidden_states(clip_images=clip_pixels(common["image"]),
                                 image_index=torch.zeros(1, dtype=torch.long), input_ids=ids, attention_mask=mask)[0]
    s = common["im_start_index"]
    P = model.num_image_tokens
    non_image = torch.cat([hidden[: s + 1], hidden[s + 1 + P:]])
    seg_hidden = hidden[torch.from_numpy(g["seg_hidden_index"])]
    return {
        "hidden_last_non_image": rel_err(non_image, g["hidden_last_non_image"]),
        "image_token_hidden": rel_err(hidden[s + 1: s + 1 + P], g["image_token_hidden"]),
        "seg_hidden": rel_err(seg_hidden, g["seg_hidden"]),
        "pred_embedding": rel_err(model.projector(seg_hidden), g["pred_embedding"]),
        "similarity": rel_err(model.seg_similarity(hidden[None], ids)[2].float(), g["similarity"]),
    }


def sam_input(img: str) -> torch.Tensor:
    """READ's SAM input: ResizeLongestSide(1024) (PIL bilinear), (x - mean) / std, zero pad right/bottom."""
    from PIL import Image

    rgb = np.asarray(Image.open(REF / "images" / f"{img}.png").convert("RGB"))
    h, w = rgb.shape[:2]
    scale = 1024 / max(h, w)
    nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)
    resized = np.array(Image.fromarray(rgb).resize((nw, nh), Image.BILINEAR))
    x = (torch.from_numpy(resized).permute(2, 0, 1).contiguous() - PIXEL_MEAN) / PIXEL_STD
    return F.pad(x, (0, 1024 - nw, 0, 1024 - nh))


# ---------------------------------------------------------------------------------------------------- tests
def test_ids_and_placeholder(model):
    assert model.seg_token_id == 32000
    assert model.image_token_id == 32003  # the extra row after READ's 32003-token vocabulary
    emb = model.llava.model.language_model.embed_tokens.weight
    assert emb.shape[0] == 32004 and model.llava.lm_head.weight.shape[0] == 32004
    assert not emb[32003].any() and not model.llava.lm_head.weight[32003].any()
    assert model.num_image_tokens == 576 and model.sam_image_size == 1024


def test_sam_shape_inferred_from_weights():
    state = read_release_state_dict(CKPT)
    shape = infer_sam_shape(state)  # no sam_arch: everything but the decoder heads comes from the weights
    assert (shape.encoder_embed_dim, shape.encoder_depth, shape.encoder_num_heads) == (64, 2, 2)
    assert shape.encoder_global_attn_indexes == (1,) and shape.window_size == 14
    sizes = (shape.image_size, shape.prompt_dim, shape.decoder_mlp_dim, shape.iou_head_hidden_dim)
    assert sizes == (1024, 256, 2048, 256)
    assert infer_sam_shape(state, str(ARCH)) == shape


@torch.no_grad()
@pytest.mark.parametrize("img", IMAGES)
def test_clip_and_projected_features(model, img):
    g = image_golden(img)
    assert rel_err(clip_features(model, img), g["clip_features"]) < RTOL
    assert rel_err(projected_features(model, img), g["image_features_projected"]) < RTOL


@torch.no_grad()
@pytest.mark.parametrize("case", TF_CASES)
def test_teacher_forced_states(model, case):
    errors = case_states(model, case)
    assert all(e < RTOL for e in errors.values()), errors


@torch.no_grad()
@pytest.mark.parametrize("img", ["a0", "a2"])
def test_sam_image_embeddings(model, img):
    x = sam_input(img)
    info = json.loads((REF / "golden" / "inputs" / f"{img}.json").read_text())
    assert list(x.shape[1:]) == [1024, 1024]
    assert hashlib.sha256(x.numpy().tobytes()).hexdigest() == info["sam_input_fp32"]["sha256"]
    emb = model.sam.image_encoder(x[None])[0, :, ::8, ::8]
    assert rel_err(emb, image_golden(img)["sam_image_embeddings_sub8"]) < RTOL


@torch.no_grad()
def test_mutations_are_detected(model):
    """A wrong mapping must fail the checks above: swapped q/k projections, the CLIP layer off by one, the two
    projector (mm_projector) layers' roles swapped in the [SEG] projector (fc1 <-> fc2 of text_hidden_fcs would not
    even load), a missing final norm."""
    case = TF_CASES[0]
    img = CASES[case]["common"]["image"]

    bad = copy.deepcopy(model)
    attn = bad.llava.model.language_model.layers[0].self_attn
    attn.q_proj.weight, attn.k_proj.weight = attn.k_proj.weight, attn.q_proj.weight
    assert case_states(bad, case)["hidden_last_non_image"] > 1e-3

    bad = copy.deepcopy(model)
    bad.llava.config.vision_feature_layer = -1
    assert rel_err(projected_features(bad, img), image_golden(img)["image_features_projected"]) > 1e-3

    bad = copy.deepcopy(model)
    bad.llava.model.language_model.norm.weight.fill_(1.0)
    assert case_states(bad, case)["seg_hidden"] > 1e-3

    bad = copy.deepcopy(model)
    bad.projector.fc1.weight.copy_(bad.projector.fc1.weight.T.clone())
    assert case_states(bad, case)["pred_embedding"] > 1e-3


# ---------------------------------------------------------------------------------------------------- errors
def _copy_release(tmp_path: Path, *, weights: bool) -> Path:
    out = tmp_path / "release"
    out.mkdir()
    for f in CKPT.iterdir():
        if weights or not f.name.startswith("pytorch_model"):
            shutil.copy(f, out / f.name)
    return out


def test_error_no_weights(tmp_path):
    folder = _copy_release(tmp_path, weights=False)
    with pytest.raises(ValueError, match=r"no weights \(expected pytorch_model\.bin"):
        load_read_release(folder, clip_path=str(CLIP))


def test_error_zero_folder(tmp_path):
    folder = _copy_release(tmp_path, weights=False)
    (folder / "global_step151").mkdir()
    (folder / "zero_to_fp32.py").write_text("# deepspeed\n")
    with pytest.raises(ValueError, match=r"zero_to_fp32\.py.*merge_lora_weights_and_save_hf_model\.py"):
        load_read_release(folder, clip_path=str(CLIP))


def test_error_missing_clip(tmp_path):
    with pytest.raises(ValueError, match=r"model\.clip_path"):
        load_read_release(CKPT, clip_path=str(tmp_path / "no-clip"))
    folder = _copy_release(tmp_path, weights=True)  # mm_vision_tower ./clip-vit-tiny-patch14-336 resolves nowhere
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(ValueError, match=r"CLIP vision tower not found .*mm_vision_tower.*model\.clip_path"):
            load_read_release(folder)
    finally:
        os.chdir(cwd)


def test_error_unmerged_lora(tmp_path):
    folder = _copy_release(tmp_path, weights=False)
    state = {
        "base_model.model.model.layers.0.self_attn.q_proj.weight": torch.zeros(64, 64),
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight": torch.zeros(8, 64),
        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight": torch.zeros(64, 8),
    }
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"un-merged LoRA.*merge_lora_weights_and_save_hf_model\.py"):
        load_read_release(folder, clip_path=str(CLIP))


def test_error_missing_tokenizer(tmp_path):
    folder = _copy_release(tmp_path, weights=True)
    (folder / "tokenizer.model").unlink()
    with pytest.raises(ValueError, match=r"no tokenizer\.model"):
        load_read_release(folder, clip_path=str(CLIP))


def test_error_unmapped_key(tmp_path):
    folder = _copy_release(tmp_path, weights=False)
    state = torch.load(CKPT / "pytorch_model.bin", map_location="cpu", weights_only=True)
    state["model.some_new_head.weight"] = torch.zeros(2)
    del state["model.norm.weight"]
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"model\.some_new_head\.weight.*language_model\.norm\.weight"):
        load_read_release(folder, clip_path=str(CLIP), sam_arch=str(ARCH))


def test_sam_arch_contradiction(tmp_path):
    arch = json.loads(ARCH.read_text())
    arch["sam"]["encoder_global_attn_indexes"] = [0]
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(arch))
    with pytest.raises(ValueError, match=r"encoder_global_attn_indexes"):
        infer_sam_shape(read_release_state_dict(CKPT), str(path))


def test_error_vocabulary_without_seg(tmp_path):
    folder = _copy_release(tmp_path, weights=False)
    (folder / "added_tokens.json").write_text(json.dumps({"<im_start>": 32001, "<im_end>": 32002}))
    with pytest.raises(ValueError, match=r"no \[SEG\] token"):
        load_read_release(folder, clip_path=str(CLIP))


def test_sharded_bin_with_index(tmp_path, model):
    """The 7B release layout: pytorch_model-0000k-of-0000n.bin + pytorch_model.bin.index.json."""
    folder = _copy_release(tmp_path, weights=False)
    state = torch.load(CKPT / "pytorch_model.bin", map_location="cpu", weights_only=True)
    keys = sorted(state)
    shards = {"pytorch_model-00001-of-00002.bin": keys[::2], "pytorch_model-00002-of-00002.bin": keys[1::2]}
    weight_map = {}
    for name, part in shards.items():
        torch.save({k: state[k] for k in part}, folder / name)
        weight_map.update({k: name for k in part})
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    loaded = load_read_release(folder, clip_path=str(CLIP), sam_arch=str(ARCH))
    ours, ref = loaded.state_dict(), model.state_dict()
    assert ours.keys() == ref.keys() and all(torch.equal(ours[k], ref[k]) for k in ref)
