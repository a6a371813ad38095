"""READ tiny model: training forward/backward, [SEG] position switch, mismatch errors, mask-free batches, bf16, the
public primitives (hidden_states, seg_similarity)."""

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
    P, K = model.num_image_tokens, model.cfg.sasp.num_points
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
        hidden = model.hidden_states(clip_images=inputs["clip_images"], image_index=inputs["image_index"],
                                     input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])[0]
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


def test_public_primitives_are_the_pass_forward_runs_with_gradients(tiny_model, tiny_inputs):
    """hidden_states -> seg_similarity: each [SEG]'s conversation, its state and the map SasP reads, differentiable."""
    model, _ = tiny_model
    input_ids = tiny_inputs["input_ids"]
    hidden_CTD = model.hidden_states(clip_images=tiny_inputs["clip_images"], image_index=tiny_inputs["image_index"],
                                     input_ids=input_ids, attention_mask=tiny_inputs["attention_mask"])
    conv_N, seg_hidden_ND, similarity_NP = model.seg_similarity(hidden_CTD, input_ids)
    out = model(**tiny_inputs)
    counts = (input_ids == model.seg_token_id).sum(1).tolist()
    assert conv_N.tolist() == [c for c, n in enumerate(counts) for _ in range(n)]
    assert seg_hidden_ND.shape == (len(conv_N), hidden_CTD.shape[-1])
    torch.testing.assert_close(similarity_NP, torch.cat(out.similarity).detach())
    similarity_NP.sum().backward()
    assert model.llava.model.language_model.layers[1].self_attn.q_proj.weight.grad.abs().sum() > 0


def test_weighted_loss_reads_one_weight_per_term():
    """A new objective is a term in READ.forward's `losses` and a `<name>_weight` config field."""
    from model.read import READ

    @dataclasses.dataclass
    class Cfg:
        ce_weight: float = 1.0
        point_weight: float = 3.0

    holder = type("Holder", (), {"cfg": Cfg(), "weighted_loss": READ.weighted_loss})()
    total = holder.weighted_loss({"ce_loss": torch.tensor(2.0), "point_loss": torch.tensor(0.5)})
    assert float(total) == 2.0 + 3.0 * 0.5
    with pytest.raises(ValueError, match="dice_weight"):
        holder.weighted_loss({"dice_loss": torch.tensor(1.0)})
