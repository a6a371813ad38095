"""READ.generate_batch (left-padded prompts, KV cache, per-row stop, SAM once per image) against one-at-a-time
READ.generate on the tiny preset in fp32: identical tokens, the same masks and points."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.build import build_read
from model.config import ReadModelConfig, SaspConfig
from pipelines.data.conversation import eval_prompt
from pipelines.data.image import clip_preprocess, sam_preprocess
from pipelines.data.tokenize import left_pad, tokenize

QUERIES = ["the red circle", "What would you sit on in this picture?", "the big blue square on the left"]


def images(model):
    rng = np.random.default_rng(0)
    out = []
    for h, w in ((40, 56), (48, 32)):
        rgb = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        sam, resized = sam_preprocess(rgb, model.sam_image_size)
        out.append((clip_preprocess(rgb, model.clip_image_size), sam, resized, (h, w)))
    return out


@pytest.fixture(scope="module", params=["before", "token"])
def setup(request):
    torch.manual_seed(0)
    model, tokenizer = build_read(ReadModelConfig(preset="tiny", seg_hidden_position=request.param,
                                                  sasp=SaspConfig(num_points=6)))
    model.eval()
    ids = [tokenize(eval_prompt(q, is_sentence=q.endswith("?"), with_answer=False), tokenizer,
                    model.num_image_tokens)[0] for q in QUERIES]
    # Make [SEG] the model's favourite among the tokens it generates, so masks are decoded.
    with torch.no_grad():
        first = model.generate(clip_image=images(model)[0][0], sam_image=images(model)[0][1],
                               resized_size=images(model)[0][2], original_size=images(model)[0][3],
                               input_ids=ids[0][None], max_new_tokens=3).token_ids
        head = model.llava.lm_head.weight
        head[model.seg_token_id] = head[first[1]] * 1.5
    return model, tokenizer, ids


def test_batch_equals_one_at_a_time(setup):
    model, tokenizer, ids = setup
    imgs = images(model)
    image_of = [0, 1, 0]
    singles = [model.generate(clip_image=imgs[i][0], sam_image=imgs[i][1], resized_size=imgs[i][2],
                              original_size=imgs[i][3], input_ids=x[None], max_new_tokens=6)
               for i, x in zip(image_of, ids)]
    input_ids, mask = left_pad(ids, tokenizer.pad_token_id)
    batch = model.generate_batch(clip_images=torch.stack([im[0] for im in imgs]),
                                 sam_images=torch.stack([im[1] for im in imgs]),
                                 resized_sizes=[im[2] for im in imgs], original_sizes=[im[3] for im in imgs],
                                 image_index=torch.tensor(image_of), input_ids=input_ids, attention_mask=mask,
                                 max_new_tokens=6)
    assert sum(s.mask_logits.shape[0] for s in singles) >= 2  # some [SEG]s were generated and decoded
    for one, many in zip(singles, batch):
        assert one.token_ids == many.token_ids and one.ended == many.ended
        assert one.mask_logits.shape == many.mask_logits.shape
        torch.testing.assert_close(many.similarity, one.similarity, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(many.points, one.points, rtol=1e-4, atol=1e-3)
        assert torch.equal(many.point_labels, one.point_labels)
        torch.testing.assert_close(many.mask_logits, one.mask_logits, rtol=1e-4, atol=1e-3)
        assert torch.equal(many.mask_logits > 0, one.mask_logits > 0)
