"""Checkpoint loaders on tiny checkpoints written here: HF LLaVA folder, SAM .pth, original LLaVA naming, our export."""

import dataclasses

import pytest
import torch

from model.build import build_read, load_export, save_export
from model.config import ReadModelConfig, SaspConfig, TinyConfig
from model.convert import read_to_original_name, write_original_checkpoint
from pipelines.train.freeze import apply_trainable_policy, merge_lora
from tests.fixtures.model import make_inputs


def _segment_inputs(model, tokenizer):
    inputs = make_inputs(model, tokenizer, answers=["It is [SEG]."], image_index=[0], sizes=[(36, 44)])
    return {k: v for k, v in inputs.items() if k not in ("labels", "gt_masks")}


def _assert_same_outputs(a, b, inputs):
    out_a, out_b = a.segment(**inputs), b.segment(**inputs)
    torch.testing.assert_close(out_a.mask_logits[0], out_b.mask_logits[0])
    torch.testing.assert_close(out_a.points[0], out_b.points[0])


def _randomise(module):
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.01)


def test_hf_llava_folder(tmp_path, tiny_model):
    model, tokenizer = tiny_model
    model.llava.save_pretrained(tmp_path / "llava")
    tokenizer.save_pretrained(tmp_path / "llava")
    loaded, loaded_tok = build_read(ReadModelConfig(llava_path=str(tmp_path / "llava")))
    assert (tmp_path / "llava" / "model.safetensors").exists()
    assert loaded_tok.convert_tokens_to_ids("[SEG]") == model.seg_token_id
    assert loaded.image_token_id == model.image_token_id and loaded.num_image_tokens == model.num_image_tokens
    ref = model.llava.state_dict()
    for name, tensor in loaded.llava.state_dict().items():
        torch.testing.assert_close(tensor, ref[name], msg=name)


def test_hf_llava_folder_without_seg_token_gets_one_and_grows_embeddings(tmp_path, tiny_model):
    model, tokenizer = tiny_model
    folder = tmp_path / "llava"
    model.llava.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    for f in folder.glob("tokenizer*.json"):  # a LLaVA tokenizer that never heard of [SEG]
        f.write_text(f.read_text().replace("[SEG]", "[XSG]"))
    rows = model.llava.get_input_embeddings().weight.shape[0]
    loaded, tok = build_read(ReadModelConfig(llava_path=str(folder)))
    assert loaded.seg_token_id == rows == len(tok) - 1
    assert loaded.llava.get_input_embeddings().weight.shape[0] == loaded.llava.lm_head.weight.shape[0] == rows + 1
    assert loaded.seg_token_id in tok("is [SEG].", add_special_tokens=False).input_ids
    rows_of_seg = torch.stack([loaded.llava.get_input_embeddings().weight[loaded.seg_token_id],
                               loaded.llava.lm_head.weight[loaded.seg_token_id]])
    assert 0.005 < float(rows_of_seg.std()) < 0.05  # READ's resize_token_embeddings: N(0, 0.02)
    assert loaded.llava.config.readseg_added_rows["[SEG]"]["id"] == loaded.seg_token_id  # saved with exports


def test_sam_pth(tmp_path, tiny_model):
    model, tokenizer = tiny_model
    _randomise(model.sam)
    torch.save(model.sam.state_dict(), tmp_path / "sam.pth")
    loaded, _ = build_read(ReadModelConfig(sam_checkpoint=str(tmp_path / "sam.pth")))
    for name, tensor in loaded.sam.state_dict().items():
        torch.testing.assert_close(tensor, model.sam.state_dict()[name], msg=name)


def test_sam_pth_of_another_architecture_is_rejected(tmp_path, tiny_model):
    model, _ = tiny_model
    state = {k: v for k, v in model.sam.state_dict().items() if not k.startswith("mask_decoder.iou")}
    state["image_encoder.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "sam.pth")
    with pytest.raises(ValueError, match=r"missing keys .*mask_decoder\.iou.*unexpected keys .*image_encoder\.extra"):
        build_read(ReadModelConfig(sam_checkpoint=str(tmp_path / "sam.pth")))


def test_original_naming_checkpoint_gives_identical_outputs(tmp_path, tiny_model):
    model, tokenizer = tiny_model
    _randomise(model)
    path = tmp_path / "lisa.safetensors"
    write_original_checkpoint(model, str(path))
    from safetensors.torch import load_file

    keys = set(load_file(str(path)))
    assert "model.mm_projector.0.weight" in keys and "model.text_hidden_fcs.0.2.weight" in keys
    assert "model.visual_model.mask_decoder.iou_token.weight" in keys and "lm_head.weight" in keys
    assert any(k.startswith("model.vision_tower.vision_tower.vision_model.") for k in keys)
    assert any(k.startswith("model.layers.0.self_attn.q_proj") for k in keys)
    loaded, _ = build_read(ReadModelConfig(read_checkpoint=str(path)))
    model.eval(), loaded.eval()
    _assert_same_outputs(model, loaded, _segment_inputs(model, tokenizer))


def test_original_naming_torch_bin_with_peft_prefix_and_seg_row_remap(tmp_path, tiny_model):
    model, tokenizer = tiny_model
    _randomise(model)
    state = {"base_model.model." + read_to_original_name(k): v.clone() for k, v in model.state_dict().items()}
    state["base_model.model.model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(4)  # old buffers: ignored
    # The checkpoint keeps [SEG] in row 7 (as LISA's id 32000 differs from llava-hf + [SEG]).
    for key in ("base_model.model.model.embed_tokens.weight", "base_model.model.lm_head.weight"):
        state[key][7] = model.state_dict()[key.replace("base_model.model.model.", "llava.model.language_model.")
                                           .replace("base_model.model.lm_head", "llava.lm_head")][model.seg_token_id]
        state[key][model.seg_token_id] = 0.0
    torch.save(state, tmp_path / "pytorch_model.bin")
    cfg = ReadModelConfig(read_checkpoint=str(tmp_path), original_seg_token_id=7)
    loaded, _ = build_read(cfg)
    emb = loaded.llava.get_input_embeddings().weight
    torch.testing.assert_close(emb[model.seg_token_id], model.llava.get_input_embeddings().weight[model.seg_token_id])


def test_original_naming_missing_and_unexpected_keys_are_listed(tmp_path, tiny_model):
    model, _ = tiny_model
    state = {read_to_original_name(k): v for k, v in model.state_dict().items()}
    del state["model.text_hidden_fcs.0.0.bias"]
    state["model.some_new_head.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "ckpt.pth")
    with pytest.raises(ValueError, match=r"1 missing keys \['model\.text_hidden_fcs\.0\.0\.bias'\], 1 unexpected "
                                         r"keys \['model\.some_new_head\.weight'\]"):
        build_read(ReadModelConfig(read_checkpoint=str(tmp_path / "ckpt.pth")))


def test_export_round_trip_after_lora_merge(tmp_path, tiny_model):
    model, tokenizer = tiny_model
    apply_trainable_policy(model, "read")
    with pytest.raises(ValueError, match="merge_lora"):
        save_export(model, tokenizer, model.cfg, str(tmp_path / "export"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_()
    model.eval()
    inputs = _segment_inputs(model, tokenizer)
    before = model.segment(**inputs)
    merge_lora(model)
    cfg = dataclasses.replace(model.cfg, sasp=SaspConfig(num_points=12))
    save_export(model, tokenizer, cfg, str(tmp_path / "export"))
    save_export(model, tokenizer, cfg, str(tmp_path / "export"))  # overwriting an export is fine
    loaded, loaded_tok, loaded_cfg = load_export(str(tmp_path / "export"))
    assert loaded_cfg.sasp.num_points == 12 and loaded_cfg.preset == "tiny"
    assert loaded_tok("a [SEG] <image>").input_ids == tokenizer("a [SEG] <image>").input_ids
    loaded.cfg = model.cfg
    loaded.eval()
    after = loaded.segment(**inputs)
    torch.testing.assert_close(after.mask_logits[0], before.mask_logits[0], atol=1e-4, rtol=1e-4)
    via_build, _ = build_read(ReadModelConfig(read_checkpoint=str(tmp_path / "export"), dtype="bfloat16"))
    assert via_build.llava.lm_head.weight.dtype == torch.bfloat16


def test_vision_checkpoint_loads_the_tower_and_nothing_else(tmp_path, tiny_model):
    from safetensors.torch import save_file

    model, _ = tiny_model
    tower = model.llava.model.vision_tower
    state = {k: v + 0.01 * torch.randn_like(v) for k, v in tower.state_dict().items()}
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "tower.safetensors"))
    torch.manual_seed(0)
    plain, _ = build_read(ReadModelConfig())
    torch.manual_seed(0)
    loaded, _ = build_read(ReadModelConfig(tiny=TinyConfig(vision_checkpoint=str(tmp_path / "tower.safetensors"))))
    for name, tensor in loaded.llava.model.vision_tower.state_dict().items():
        torch.testing.assert_close(tensor, state[name], msg=name)
    torch.testing.assert_close(loaded.llava.lm_head.weight, plain.llava.lm_head.weight)  # the rest as built
    torch.testing.assert_close(loaded.projector.state_dict(), plain.projector.state_dict())


def test_vision_checkpoint_errors_name_the_key_and_the_file(tmp_path, tiny_model):
    from safetensors.torch import save_file

    model, _ = tiny_model
    with pytest.raises(ValueError, match=r"model\.tiny\.vision_checkpoint=.*nowhere\.safetensors.* does not exist"):
        build_read(ReadModelConfig(tiny=TinyConfig(vision_checkpoint=str(tmp_path / "nowhere.safetensors"))))
    state = {k: v for k, v in model.llava.model.vision_tower.state_dict().items() if "post_layernorm" not in k}
    state["extra.weight"] = torch.zeros(1)
    save_file(state, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match=r"model\.tiny\.vision_checkpoint=.*missing keys .*post_layernorm.*"
                                         r"unexpected keys .*extra\.weight"):
        build_read(ReadModelConfig(tiny=TinyConfig(vision_checkpoint=str(tmp_path / "other.safetensors"))))


def test_export_does_not_point_back_at_the_vision_checkpoint(tmp_path, tiny_model):
    from safetensors.torch import save_file

    model, tokenizer = tiny_model
    path = tmp_path / "tower.safetensors"
    save_file({k: v.contiguous() for k, v in model.llava.model.vision_tower.state_dict().items()}, str(path))
    cfg = ReadModelConfig(tiny=TinyConfig(vision_checkpoint=str(path)))
    built, tok = build_read(cfg)
    save_export(built, tok, cfg, str(tmp_path / "export"))
    path.unlink()  # the export holds the tower: it must load without the file
    _, _, loaded_cfg = load_export(str(tmp_path / "export"))
    assert loaded_cfg.tiny.vision_checkpoint == ""


def test_an_export_of_format_version_1_still_loads(tmp_path, tiny_model):
    """Version 1 kept SasP, the tiny overrides and the answer style as flat keys of read_config (and no
    prompt_format.json); it loads with the same settings, and evaluation reads its answer style."""
    import json

    from model.export import CONFIG_FILE
    from model.export import load_prompt_format
    from model.prompt_format import PROMPT_FORMAT_FILE

    model, tokenizer = tiny_model
    folder = tmp_path / "export"
    save_export(model, tokenizer, model.cfg, str(folder))
    meta = json.loads((folder / CONFIG_FILE).read_text())
    v2 = meta["read_config"]
    flat = {k: v for k, v in v2.items() if k not in ("sasp", "tiny")}
    flat |= {"num_points": 7, "t_pos": 0.7, "t_neg": 0.1, "down_sample": 1, "answer_style": "echo",
             "clip_image_size": 0, "llm_init_std": 0.0, "projector_init_gain": 1.0, "vision_checkpoint": ""}
    (folder / CONFIG_FILE).write_text(json.dumps(meta | {"version": 1, "read_config": flat}))
    (folder / PROMPT_FORMAT_FILE).unlink()
    loaded, _, cfg = load_export(str(folder))
    assert cfg.sasp == SaspConfig(num_points=7, t_pos=0.7, t_neg=0.1, down_sample=1)
    assert cfg.tiny == TinyConfig()
    assert load_prompt_format(folder).answer_style == "echo"
    torch.testing.assert_close(loaded.state_dict(), model.state_dict())
    (folder / CONFIG_FILE).write_text(json.dumps(meta | {"version": 3}))
    with pytest.raises(ValueError, match=r"format readseg-export v3 unsupported"):
        load_export(str(folder))
