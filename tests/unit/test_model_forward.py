"""READ tiny model: training forward/backward, [SEG] position switch, mismatch errors, mask-free batches, bf16."""

import dataclasses

import pytest
import torch

from tests.fixtures.model import make_inputs


def test_forward_backward_losses_and_shapes(tiny_model, tiny_inputs):
    model, _ = tiny_model
    out = model(**tiny_inputs)
    for name in ("loss", "ce_loss", "bce_loss", "dice_loss"):
        value = getattr(out, name)
        assert value.dim() == 0 and torch.isfinite(value), name
    assert out.bce_loss > 0 and out.dice_loss > 0
    cfg = model.cfg
    expected = cfg.ce_weight * out.ce_loss + cfg.bce_weight * out.bce_loss + cfg.dice_weight * out.dice_loss
    torch.testing.assert_close(out.loss, expected)
    assert [tuple(m.shape) for m in out.mask_logits] == [(1, 40, 56), (2, 48, 36), (0, 40, 56)]
    P, K = model.num_image_tokens, model.cfg.num_points
    assert [tuple(s.shape) for s in out.similarity] == [(1, P), (2, P), (0, P)]
    assert [tuple(p.shape) for p in out.points] == [(1, K, 2), (2, K, 2), (0, K, 2)]
    assert out.point_labels[1].dtype == torch.long and set(out.point_labels[1].unique().tolist()) <= {-1, 0, 1}
    out.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    for prefix in ("projector.fc1.weight", "projector.fc2.weight", "sam.mask_decoder.transformer.layers.0",
                   "llava.lm_head.weight", "llava.model.language_model.layers.1.self_attn.q_proj.weight",
                   "llava.model.multi_modal_projector.linear_1.weight", "sam.image_encoder.patch_embed"):
        hit = [g for n, g in grads.items() if n.startswith(prefix)]
        assert hit and all(g is not None and torch.isfinite(g).all() for g in hit), prefix
        assert any(g.abs().sum() > 0 for g in hit), prefix
    # The [SEG] row of the embedding only gets gradient through CE at the [SEG]-predicting position (lm_head).
    assert grads["llava.lm_head.weight"][model.seg_token_id].abs().sum() > 0


def test_seg_count_mismatch_names_both_numbers_and_conversation(tiny_model, tiny_inputs):
    model, _ = tiny_model
    tiny_inputs["gt_masks"][1] = tiny_inputs["gt_masks"][1][:1]
    with pytest.raises(ValueError, match=r"conversation 1 .*2 \[SEG\] tokens but 1 masks"):
        model(**tiny_inputs)


def test_mask_free_batch_gives_ce_only(tiny_model):
    model, tokenizer = tiny_model
    inputs = make_inputs(model, tokenizer, answers=["It is red.", "No."], image_index=[0, 0], sizes=[(30, 20)])
    out = model(**inputs)
    assert out.bce_loss == 0 and out.dice_loss == 0 and out.ce_loss > 0
    torch.testing.assert_close(out.loss, model.cfg.ce_weight * out.ce_loss)
    out.loss.backward()
    assert model.projector.fc1.weight.grad is None  # no [SEG]: the mask branch is not run
    assert model.llava.lm_head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("position", ["before", "token"])
def test_seg_hidden_position_switch(tiny_model, position):
    model, tokenizer = tiny_model
    model.cfg = dataclasses.replace(model.cfg, seg_hidden_position=position)
    inputs = make_inputs(model, tokenizer, answers=["A [SEG] and [SEG]."], image_index=[0], sizes=[(32, 32)])
    captured = []
    handle = model.projector.register_forward_hook(lambda mod, args, out: captured.append(args[0]))
    model.segment(**{k: v for k, v in inputs.items() if k not in ("labels", "gt_masks")})
    handle.remove()
    with torch.no_grad():
        hidden = model._language_hidden(inputs["clip_images"], inputs["image_index"], inputs["input_ids"],
                                        inputs["attention_mask"])[0]
    seg_pos = (inputs["input_ids"][0] == model.seg_token_id).nonzero()[:, 0]
    expected_pos = seg_pos - 1 if position == "before" else seg_pos
    torch.testing.assert_close(captured[0], hidden[expected_pos])
    other = seg_pos if position == "before" else seg_pos - 1
    assert not torch.allclose(captured[0], hidden[other])


def test_wrong_number_of_image_tokens_is_a_clear_error(tiny_model, tiny_inputs):
    model, _ = tiny_model
    ids = tiny_inputs["input_ids"].clone()
    ids[0, (ids[0] == model.image_token_id).nonzero()[0, 0]] = 7
    tiny_inputs["input_ids"] = ids
    with pytest.raises(ValueError, match=f"conversation 0 has {model.num_image_tokens - 1} <image> tokens"):
        model(**tiny_inputs)


def test_bf16_forward_and_backward(tiny_model, tiny_inputs):
    model, _ = tiny_model
    model.to(torch.bfloat16)
    out = model(**tiny_inputs)  # float32 inputs are cast by the model
    assert torch.isfinite(out.loss) and out.bce_loss > 0
    assert out.mask_logits[0].dtype == torch.float32
    out.loss.backward()
    assert model.projector.fc2.weight.grad.dtype == torch.bfloat16
    assert torch.isfinite(model.projector.fc2.weight.grad.float()).all()


def test_similarity_maps_are_the_maps_sasp_reads_with_gradients(tiny_model, tiny_inputs):
    model, _ = tiny_model
    keys = ("clip_images", "image_index", "input_ids", "attention_mask")
    maps = model.similarity_maps(**{k: tiny_inputs[k] for k in keys})
    out = model(**tiny_inputs)
    torch.testing.assert_close(maps, torch.cat(out.similarity).detach())
    maps.sum().backward()
    assert model.llava.model.language_model.layers[1].self_attn.q_proj.weight.grad.abs().sum() > 0
