"""READ.generate: greedy text, [SEG] detection and one mask per generated [SEG]."""

import dataclasses

import pytest
import torch

from pipelines.data.tokenize import left_pad
from tests.fixtures.model import encode_conversation, sam_resized_size


def _bias_lm_head(model, token_ids: list[int]) -> None:
    """Make the LM emit `token_ids` in turn: a big bias towards them, cycling is not needed for greedy tests."""
    bias = torch.full((model.llava.lm_head.out_features,), -1e4)
    for rank, token in enumerate(token_ids):
        bias[token] = 1e4 - rank
    model.llava.lm_head.bias = torch.nn.Parameter(bias)


def _prompt(model, tokenizer, question):
    """The conversation's ids cut where the answer starts (ending at "ASSISTANT:"): (T,)."""
    ids, labels = encode_conversation(model, tokenizer, question, "x")
    return torch.tensor(ids[: labels.index(next(v for v in labels if v != -100))])


def _generate(model, tokenizer, max_new_tokens=5):
    prompt = _prompt(model, tokenizer, "Segment the circle.")
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
    _bias_lm_head(model, [model.seg_token_id])
    out = _generate(model, tokenizer, max_new_tokens=3)
    assert out.token_ids == [model.seg_token_id] * 3
    assert out.text.count("[SEG]") == 3
    K, P = model.cfg.num_points, model.num_image_tokens
    assert out.mask_logits.shape == (3, 30, 50) and out.similarity.shape == (3, P)
    assert out.points.shape == (3, K, 2) and out.point_labels.shape == (3, K)
    assert torch.isfinite(out.mask_logits).all()


def test_no_seg_generated_gives_no_mask_and_stops_at_eos(tiny_model):
    model, tokenizer = tiny_model
    model.eval()
    word = tokenizer("red", add_special_tokens=False).input_ids[0]
    _bias_lm_head(model, [word])
    out = _generate(model, tokenizer, max_new_tokens=4)
    assert out.token_ids == [word] * 4 and out.mask_logits.shape == (0, 30, 50) and out.points.shape[0] == 0
    _bias_lm_head(model, [tokenizer.eos_token_id])
    out = _generate(model, tokenizer, max_new_tokens=4)
    assert out.token_ids == [] and out.text == "" and out.mask_logits.shape[0] == 0


def test_the_image_placeholder_is_never_generated(tiny_model):
    model, tokenizer = tiny_model
    model.eval()
    _bias_lm_head(model, [model.image_token_id, model.seg_token_id])  # <image> first: an untrained model may do this
    out = _generate(model, tokenizer, max_new_tokens=3)
    assert out.token_ids == [model.seg_token_id] * 3
    assert out.mask_logits.shape == (3, 30, 50) and out.similarity.shape == (3, model.num_image_tokens)


def test_generate_matches_teacher_forced_segment(tiny_model):
    model, tokenizer = tiny_model
    model.eval()
    _bias_lm_head(model, [model.seg_token_id])
    torch.manual_seed(1)
    out = _generate(model, tokenizer, max_new_tokens=2)
    prompt = _prompt(model, tokenizer, "Segment the circle.").tolist()
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


def test_batched_greedy_ids_match_generate_for_left_padded_prompts(tiny_model):
    model, tokenizer = tiny_model
    model.eval()
    torch.manual_seed(3)
    with torch.no_grad():  # a random LM head sharp enough that the greedy text depends on the image and the prompt
        model.llava.lm_head.weight.normal_(0, 2.0)
    c, s = model.clip_image_size, model.sam_image_size
    clips = torch.randn(2, 3, c, c)
    prompts = [_prompt(model, tokenizer, q) for q in ("Segment the circle.", "Where is the big red star on the left?",
                                                      "Star?")]
    image_index = torch.tensor([0, 1, 1])
    input_ids, attention_mask = left_pad(prompts, tokenizer.pad_token_id)
    ids_CG = model.greedy_token_ids(clip_images=clips, image_index=image_index, input_ids=input_ids,
                                    attention_mask=attention_mask, max_new_tokens=6)
    texts = []
    for i, prompt in enumerate(prompts):
        out = model.generate(clip_image=clips[image_index[i]], sam_image=torch.zeros(3, s, s), resized_size=(s, s),
                             original_size=(s, s), input_ids=prompt[None], max_new_tokens=6)
        row = ids_CG[i].tolist()
        cut = row.index(tokenizer.eos_token_id) if tokenizer.eos_token_id in row else len(row)
        assert row[:cut] == out.token_ids and all(t == tokenizer.eos_token_id for t in row[cut:])
        texts.append(tuple(out.token_ids))
    assert len(set(texts)) > 1  # the rows really differ, so a mix-up between rows would show


def test_batched_greedy_ids_stop_at_stop_ids_and_pad_with_eos(tiny_model):
    model, tokenizer = tiny_model
    model.eval()
    word = tokenizer("red", add_special_tokens=False).input_ids[0]
    _bias_lm_head(model, [model.image_token_id, word])
    c = model.clip_image_size
    input_ids, attention_mask = left_pad([_prompt(model, tokenizer, "Segment the circle.")] * 2, tokenizer.pad_token_id)
    run = dict(clip_images=torch.randn(1, 3, c, c), image_index=torch.tensor([0, 0]), input_ids=input_ids,
               attention_mask=attention_mask, max_new_tokens=4)
    assert model.greedy_token_ids(**run).tolist() == [[word] * 4] * 2  # never <image>; runs to max_new_tokens
    assert model.greedy_token_ids(**run, stop_ids=(word,)).tolist() == [[word]] * 2
