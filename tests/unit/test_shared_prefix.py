"""The shared prefix of batched decoding (model.shared_prefix): which rows share what, and that generate_batch
with it decodes exactly what each prompt decodes alone."""

from __future__ import annotations

import pytest
import torch

from model.shared_prefix import plan_shared_prefix

IMG, PAD = 9, 0


def left_padded(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.tensor([[PAD] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return ids, mask


ROWS = [
    [1, 5, IMG, IMG, 7, 20, 21],       # image 0
    [1, 5, IMG, IMG, 7, 30],           # image 1, alone
    [1, 5, IMG, IMG, 7, 20, 22, 23],   # image 0
    [1, 5, IMG, IMG, 7, 20],           # image 0: all of it is the common run, so its last token stays a suffix
]


def test_prefixes_and_suffixes_rebuild_every_row():
    ids, mask = left_padded(ROWS)
    plan = plan_shared_prefix(ids, mask, torch.tensor([0, 1, 0, 0]), image_token_id=IMG, pad_id=PAD)
    assert plan is not None
    assert plan.group_image.tolist() == [0, 1] and plan.row_group.tolist() == [0, 1, 0, 0]
    assert plan.prefix_len.tolist() == [5, 5]  # image 0: 6 tokens in common, one left to the shortest row
    for c, row in enumerate(ROWS):
        g = int(plan.row_group[c])
        prefix = plan.prefix_ids[g][plan.prefix_mask[g].bool()].tolist()
        suffix = plan.suffix_ids[c][plan.suffix_mask[c].bool()].tolist()
        assert prefix + suffix == row and suffix
    # states of the two passes land where one pass over the padded prompts puts them
    prefix_GLD = plan.prefix_ids[..., None].float()
    suffix_CSD = plan.suffix_ids[..., None].float()
    states = plan.prompt_states(prefix_GLD, suffix_CSD, mask)
    assert torch.equal(states[..., 0].long() * mask, ids * mask)


@pytest.mark.parametrize("rows, images", [
    (ROWS[:2], [0, 1]),                                          # every image alone: nothing shared
    ([[1, IMG, IMG, 7, 20], [1, IMG, 8, 7, 21]], [0, 0]),          # rows differ inside the image tokens
])
def test_no_plan_when_nothing_or_not_every_image_token_is_shared(rows, images):
    ids, mask = left_padded(rows)
    assert plan_shared_prefix(ids, mask, torch.tensor(images), image_token_id=IMG, pad_id=PAD) is None


def test_generate_batch_with_shared_prefixes_equals_one_at_a_time():
    from tests.unit.test_generate_batch import images
    from model.build import build_read
    from model.config import ReadModelConfig, SaspConfig
    from pipelines.data.conversation import eval_prompt
    from pipelines.data.tokenize import left_pad, tokenize

    torch.manual_seed(1)
    model, tokenizer = build_read(ReadModelConfig(preset="tiny", sasp=SaspConfig(num_points=6)))
    model.eval()
    queries = ["the red circle", "the blue square", "a cross", "What is on the left?", "the red circle"]
    image_of = [0, 0, 1, 1, 1]
    ids = [tokenize(eval_prompt(q, is_sentence=q.endswith("?"), with_answer=False), tokenizer,
                    model.num_image_tokens)[0] for q in queries]
    input_ids, mask = left_pad(ids, tokenizer.pad_token_id)
    plan = plan_shared_prefix(input_ids, mask, torch.tensor(image_of), image_token_id=model.image_token_id,
                              pad_id=tokenizer.pad_token_id)
    assert plan is not None and plan.prefix_len.min() > model.num_image_tokens
    with torch.no_grad():  # make [SEG] likely, so that masks are decoded too
        model.llava.lm_head.weight[model.seg_token_id] *= 4
    imgs = images(model)
    singles = [model.generate(clip_image=imgs[i][0], sam_image=imgs[i][1], resized_size=imgs[i][2],
                              original_size=imgs[i][3], input_ids=x[None], max_new_tokens=5)
               for i, x in zip(image_of, ids)]
    batch = model.generate_batch(clip_images=torch.stack([im[0] for im in imgs]),
                                 sam_images=torch.stack([im[1] for im in imgs]),
                                 resized_sizes=[im[2] for im in imgs], original_sizes=[im[3] for im in imgs],
                                 image_index=torch.tensor(image_of), input_ids=input_ids, attention_mask=mask,
                                 max_new_tokens=5)
    assert sum(s.mask_logits.shape[0] for s in singles) >= 2  # [SEG]s were generated and decoded
    for one, many in zip(singles, batch):
        assert one.token_ids == many.token_ids and one.ended == many.ended
        torch.testing.assert_close(many.similarity, one.similarity, rtol=1e-4, atol=1e-4)
        assert torch.equal(many.mask_logits > 0, one.mask_logits > 0)
