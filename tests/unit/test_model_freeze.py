"""Trainable-parameter policies (pipelines/train/freeze.py) on the tiny READ model."""

import pytest
import torch

from pipelines.train.freeze import TrainableConfig, apply_trainable_policy, merge_lora, trainable_parameter_names


def test_read_policy_parameter_sets(tiny_model):
    model, _ = tiny_model
    apply_trainable_policy(model, TrainableConfig(policy="read"))
    names = trainable_parameter_names(model)
    lora = [n for n in names if "lora_" in n]
    # LoRA only on the language model's q_proj / v_proj: 2 layers x 2 projections x (A, B).
    assert len(lora) == 8
    lm_layers = "llava.model.language_model.layers."
    assert all(n.startswith(lm_layers) and (".q_proj." in n or ".v_proj." in n) for n in lora)
    assert not any("lora_" in n for n, _ in model.llava.model.vision_tower.named_parameters())
    full = set(names) - set(lora)
    expected_prefixes = (
        "llava.lm_head.", "llava.model.language_model.embed_tokens.", "sam.mask_decoder.", "projector."
    )
    assert all(n.startswith(expected_prefixes) for n in full)
    for prefix in expected_prefixes:
        owned = [n for n, _ in model.named_parameters() if n.startswith(prefix)]
        assert owned and set(owned) <= full, prefix
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    for prefix in ("llava.model.vision_tower.", "llava.model.multi_modal_projector.", "sam.image_encoder.",
                   "sam.prompt_encoder.", "llava.model.language_model.layers.0.mlp.",
                   "llava.model.language_model.layers.0.self_attn.q_proj.base_layer."):
        owned = [n for n, _ in model.named_parameters() if n.startswith(prefix)]
        assert owned and set(owned) <= frozen, prefix


def test_lora_hyper_parameters(tiny_model):
    model, _ = tiny_model
    apply_trainable_policy(model, TrainableConfig(policy="read"))
    q = model.llava.model.language_model.layers[1].self_attn.q_proj
    assert q.r["default"] == 8 and q.scaling["default"] == pytest.approx(16 / 8)
    assert q.lora_dropout["default"].p == pytest.approx(0.05)
    apply_trainable_policy(model, "read")  # idempotent: no second adapter
    assert sum("lora_A" in n for n, _ in model.named_parameters()) == 4


def test_full_policy_trains_everything(tiny_model):
    model, _ = tiny_model
    for p in model.parameters():
        p.requires_grad_(False)
    apply_trainable_policy(model, "full")
    assert all(p.requires_grad for p in model.parameters())


def test_merge_lora_is_exact_and_restores_plain_linears(tiny_model, tiny_inputs):
    model, _ = tiny_model
    apply_trainable_policy(model, "read")
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.1)
    model.eval()
    kwargs = {k: v for k, v in tiny_inputs.items() if k not in ("labels", "gt_masks")}
    before = model.segment(**kwargs)
    merge_lora(model)
    assert not any("lora" in n or "base_layer" in n for n in model.state_dict())
    assert type(model.llava.model.language_model.layers[0].self_attn.q_proj) is torch.nn.Linear
    after = model.segment(**kwargs)
    torch.testing.assert_close(after.mask_logits[1], before.mask_logits[1], atol=1e-4, rtol=1e-4)


def test_modules_to_save_add_full_modules_to_the_read_policy(tiny_model):
    model, _ = tiny_model
    apply_trainable_policy(model, TrainableConfig(policy="read"))
    read_only = set(trainable_parameter_names(model))
    apply_trainable_policy(model, TrainableConfig(policy="read", modules_to_save=["sam."]))
    names = set(trainable_parameter_names(model))
    sam = {n for n, _ in model.named_parameters() if n.startswith("sam.")}
    assert any(n.startswith("sam.image_encoder.") for n in sam) and names == read_only | sam
    assert not any(n.startswith("llava.model.vision_tower.") for n in names)  # CLIP stays frozen, as READ's
    with pytest.raises(ValueError, match=r"no parameter name starts with \['sma.'\]"):
        apply_trainable_policy(model, TrainableConfig(policy="read", modules_to_save=["sma."]))
    with pytest.raises(ValueError, match="policy=full everything trains"):
        TrainableConfig(policy="full", modules_to_save=["sam."])
    with pytest.raises(ValueError, match="empty prefix"):
        TrainableConfig(policy="read", modules_to_save=[""])


def test_bad_policy_is_rejected():
    with pytest.raises(ValueError, match="trainable.policy"):
        TrainableConfig(policy="lora-everything")


def test_activation_checkpointing_gives_the_same_gradients(tiny_model, tiny_inputs):
    model, _ = tiny_model
    apply_trainable_policy(model, TrainableConfig(policy="read", lora_dropout=0.0))  # deterministic passes
    model.train()  # checkpointing is only active in training mode
    model(**tiny_inputs).loss.backward()
    reference = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    model.enable_gradient_checkpointing()
    model(**tiny_inputs).loss.backward()
    got = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert got.keys() == reference.keys() and any("lora_B" in n for n in got)
    for name, grad in reference.items():
        torch.testing.assert_close(got[name], grad, msg=name)
