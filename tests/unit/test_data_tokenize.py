"""Tokenisation: exact label masking token by token, <image> expansion, [SEG] count == mask count."""

from __future__ import annotations

import random

import pytest
import torch

from pipelines.data.collate import collate
from pipelines.data.conversation import build_prompt, eval_prompt
from pipelines.data.tokenize import IGNORE_INDEX, left_pad, prompt_segments, tokenize
from pipelines.data.transform import ModelInputSpec, SampleTransform
from tests.fixtures.data import make_refer_sample, make_vqa_sample

P = 5  # image tokens


def _ids(tok, text):
    return tok.encode(text, add_special_tokens=False)


@pytest.fixture(params=["data_tokenizer", "word_tokenizer"])
def tok(request):
    return request.getfixturevalue(request.param)


def test_label_masking_token_by_token(tok):
    prompt = build_prompt([("<image>\nWhere is the red box?", "Sure, it is [SEG]."), ("Is it big?", "No.")])
    ids, labels = tokenize(prompt, tok, P)
    img, seg, eos = (tok.convert_tokens_to_ids(t) for t in ("<image>", "[SEG]", "</s>"))
    sys_user = "A chat between a curious human and an artificial intelligence assistant. The assistant gives " \
               "helpful, detailed, and polite answers to the human's questions. USER: "
    # the expected sequence written out segment by segment, independently of prompt_segments
    expected: list[tuple[list[int], bool]] = [
        ([tok.bos_token_id] if tok.bos_token_id is not None else [], False),
        (_ids(tok, sys_user), False),
        ([img] * P, False),
        (_ids(tok, "\nWhere is the red box? ASSISTANT:"), False),
        (_ids(tok, "Sure, it is [SEG]."), True),
        ([eos], True),
        (_ids(tok, "USER: Is it big? ASSISTANT:"), False),
        (_ids(tok, "No."), True),
        ([eos], True),
    ]
    exp_ids = [i for part, _ in expected for i in part]
    exp_labels = [i if sup else IGNORE_INDEX for part, sup in expected for i in part]
    assert ids.dtype == labels.dtype == torch.long
    assert ids.tolist() == exp_ids
    for t, (got, want) in enumerate(zip(labels.tolist(), exp_labels, strict=True)):
        assert got == want, f"token {t} ({tok.convert_ids_to_tokens(ids[t].item())!r}): label {got} != {want}"
    assert ids.tolist().count(img) == P and ids.tolist().count(seg) == 1
    supervised = [i for i in labels.tolist() if i != IGNORE_INDEX]
    assert supervised.count(eos) == 2 and supervised.count(seg) == 1 and img not in supervised
    assert tok.decode(supervised).replace(" ", "") == "Sure,itis[SEG].</s>No.</s>"


def test_generation_prompt_has_no_supervised_tokens_and_is_a_prefix(data_tokenizer):
    tok = data_tokenizer
    gen_ids, gen_labels = tokenize(eval_prompt("the cat", is_sentence=False, with_answer=False), tok, P)
    tf_ids, tf_labels = tokenize(eval_prompt("the cat", is_sentence=False, with_answer=True), tok, P)
    assert (gen_labels == IGNORE_INDEX).all()
    # teacher-forced = generation prompt + supervised answer: what the model generates after "ASSISTANT:"
    assert tf_ids[: len(gen_ids)].tolist() == gen_ids.tolist()
    assert (tf_labels[: len(gen_ids)] == IGNORE_INDEX).all() and (tf_labels[len(gen_ids):] != IGNORE_INDEX).all()


def test_prompt_segments_reject_a_round_without_assistant():
    with pytest.raises(ValueError, match="ASSISTANT"):
        prompt_segments("USER: hello</s>")


def test_truncation_that_would_cut_seg_raises(data_tokenizer):
    prompt = eval_prompt("the cat", is_sentence=False, with_answer=True)
    ids, _ = tokenize(prompt, data_tokenizer, P)
    short_ids, short_labels = tokenize(prompt, data_tokenizer, P, max_length=len(ids) - 1)  # drops only </s>
    assert short_ids.tolist() == ids.tolist()[:-1] and len(short_labels) == len(ids) - 1
    with pytest.raises(ValueError, match="max_length"):
        tokenize(prompt, data_tokenizer, P, max_length=len(ids) - 4)


def test_seg_split_by_tokenizer_is_an_error(data_tokenizer):
    class Splitting:  # a tokenizer that knows <image> but breaks [SEG] into pieces
        bos_token_id, eos_token_id, unk_token_id = None, 2, 0

        def convert_tokens_to_ids(self, token):
            return {"<image>": 4, "[SEG]": 5}[token]

        def encode(self, text, add_special_tokens=False):
            return [7 + (ord(c) % 50) for c in text]

    with pytest.raises(ValueError, match="one added token"):
        tokenize(eval_prompt("x", is_sentence=False, with_answer=True), Splitting(), P)


def test_seg_count_equals_mask_count_per_conversation(data_tokenizer):
    spec = ModelInputSpec(num_image_tokens=P, clip_image_size=28, sam_image_size=32)
    transform = SampleTransform(tokenizer=data_tokenizer, spec=spec, num_classes_per_sample=6)
    seg = data_tokenizer.convert_tokens_to_ids("[SEG]")
    examples = [transform(make_refer_sample(i), random.Random(i)) for i in range(3)]
    examples.append(transform(make_vqa_sample(9), random.Random(9)))
    batch = collate(examples, pad_token_id=data_tokenizer.pad_token_id)
    counts = (batch.input_ids_CT == seg).sum(dim=1).tolist()
    assert counts == [m.shape[0] for m in batch.masks_C]
    assert sum(counts) == 3 * 3  # per referring sample: 2 true short + 1 long query have masks
    kinds = [m["kind"] for m in batch.meta]
    assert kinds.count("denial") == 3 and kinds.count("correction") == 3 and kinds.count("vqa") == 1
    # supervised [SEG] == input [SEG]: the answer's [SEG] is always trained
    assert ((batch.labels_CT == seg).sum(dim=1) == (batch.input_ids_CT == seg).sum(dim=1)).all()


def test_left_pad_ends_every_sequence_at_the_last_position():
    ids, mask = left_pad([torch.tensor([5, 6, 7]), torch.tensor([9])], pad_token_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 9]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_seg_state_is_a_word_with_strip_spacing(tmp_path):
    """With the tokenizer's "strip" setting (llava-hf builds get it; it is saved with the tokenizer), the token
    before [SEG] (the state READ reads) is the last word, never a lone whitespace token; "keep" (the tiny in-code
    tokenizer, tokenizers saved before the setting) leaves the text as it is."""
    from transformers import AutoTokenizer

    from model.tokenizer import SEG_SPACING_KEY, build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    prompt = build_prompt([("<image>\nWhere is the red box?", "Sure, it is [SEG] and [SEG].")])
    kept, _ = tokenize(prompt, tok, P)
    seg = tok.convert_tokens_to_ids("[SEG]")
    before_kept = [tok.convert_ids_to_tokens(int(kept[i - 1])) for i in (kept == seg).nonzero()[:, 0]]
    assert before_kept[0].strip("Ġ▁ ") == ""  # the whitespace token the setting exists for
    tok.init_kwargs[SEG_SPACING_KEY] = "strip"
    ids, labels = tokenize(prompt, tok, P)
    before = [tok.convert_ids_to_tokens(int(ids[i - 1])) for i in (ids == seg).nonzero()[:, 0]]
    assert [b.strip("Ġ▁ ") for b in before] == ["is", "and"]
    assert int((ids == seg).sum()) == 2 and bool((labels[ids == seg] == seg).all())
    tok.save_pretrained(str(tmp_path))
    again = AutoTokenizer.from_pretrained(str(tmp_path))
    assert torch.equal(tokenize(prompt, again, P)[0], ids)
