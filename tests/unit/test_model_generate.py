"""READ.generate: greedy text, [SEG] detection and one mask per generated [SEG]."""

import dataclasses

import pytest
import torch

from tests.fixtures.model import bias_lm_head, prompt_ids, sam_resized_size


def _generate(model, tokenizer, max_new_tokens=5):
    prompt = prompt_ids(model, tokenizer, "Segment the circle.")
    c, s = model.clip_image_size, model.sam_image_size
    return model.generate(
        clip_image=torch.randn(3, c, c), sam_image=torch.randn(3, s, s), resized_size=sam_resized_size(30, 50, s),
        original_size=(30, 50), input_ids=prompt[None], max_new_tokens=max_new_tokens,
    )


@pytest.mark.parametrize("position", ["before", "token"])
def test_generated_seg_tokens_get_masks(tiny_model, position):
    model, tokenizer = tiny_model
    model.cfg = dataclasses.replace(model.cfg, seg_hidden_position=position)
    model.eval()
    bias_lm_head(model, [model.seg_token_id])
    out = _generate(model, tokenizer, max_new_tokens=3)
    assert out.token_ids == [model.seg_token_id] * 3
    assert out.text.count("[SEG]") == 3
    K, P = model.cfg.sasp.num_points, model.num_image_tokens
    assert out.mask_logits.shape == (3, 30, 50) and out.similarity.shape == (3, P)
    assert out.points.shape == (3, K, 2) and out.point_labels.shape == (3, K)
    assert torch.isfinite(out.mask_logits).all()


def test_no_seg_generated_gives_no_mask_and_stops_at_eos(tiny_model):
    model, tokenizer = tiny_model
    model.eval()
    word = tokenizer("red", add_special_tokens=False).input_ids[0]
    bias_lm_head(model, [word])
    out = _generate(model, tokenizer, max_new_tokens=4)
    assert out.token_ids == [word] * 4 and out.mask_logits.shape == (0, 30, 50) and out.points.shape[0] == 0
    bias_lm_head(model, [tokenizer.eos_token_id])
    out = _generate(model, tokenizer, max_new_tokens=4)
    assert out.token_ids == [] and out.text == "" and out.mask_logits.shape[0] == 0


def test_the_image_placeholder_is_never_generated(tiny_model):
    model, tokenizer = tiny_model
    model.eval()
    bias_lm_head(model, [model.image_token_id, model.seg_token_id])  # <image> first: an untrained model may do this
    out = _generate(model, tokenizer, max_new_tokens=3)
    assert out.token_ids == [model.seg_token_id] * 3
    assert out.mask_logits.shape == (3, 30, 50) and out.similarity.shape == (3, model.num_image_tokens)


def test_generate_matches_teacher_forced_segment(tiny_model):
    model, tokenizer = tiny_model
    model.eval()
    bias_lm_head(model, [model.seg_token_id])
    torch.manual_seed(1)
    out = _generate(model, tokenizer, max_new_tokens=2)
    prompt = prompt_ids(model, tokenizer, "Segment the circle.").tolist()
    torch.manual_seed(1)
    c, s = model.clip_image_size, model.sam_image_size
    clip, sam = torch.randn(3, c, c), torch.randn(3, s, s)
    seg = model.segment(
        clip_images=clip[None], sam_images=sam[None], resized_sizes=[sam_resized_size(30, 50, s)],
        original_sizes=[(30, 50)], image_index=torch.tensor([0]),
        input_ids=torch.tensor([prompt + out.token_ids]), attention_mask=None,
    )
    torch.testing.assert_close(out.similarity, seg.similarity[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.mask_logits, seg.mask_logits[0], atol=1e-4, rtol=1e-4)
