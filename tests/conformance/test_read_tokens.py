"""model.read_prompt.ReadPromptFormat vs READ's own token ids (the read-tiny oracle, set A).

The oracle folder (`$READ_TINY_REF`, default ../shared/reference/read-tiny beside the repository) holds a READ
checkpoint's tokenizer files (`READ-LLaVA-tiny/`) and what READ's code (transformers 4.31 slow LlamaTokenizer)
built from them:
`golden/cases.json` + `golden/{fp32,bf16}/<case>.npz` (validation / generation prompts, their input_ids, [SEG]
positions, generated ids and text) and `golden/train_tokens.json` (collate_fn_train: input_ids, labels, attention
masks). Everything here must be identical, token for token. Fast: no Ray, no model.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from model.read_prompt import (
    IGNORE_INDEX,
    IMAGE_TOKEN_INDEX,
    LLAVA_V1,
    VICUNA_V1,
    ReadPromptFormat,
    expand_image_tokens,
)
from tests.read_tiny import CKPT, REF, skip_without_oracle

skip_without_oracle("tokenizer.model")

CASES = json.loads((REF / "golden" / "cases.json").read_text())["cases"]
TRAIN = json.loads((REF / "golden" / "train_tokens.json").read_text())
PRECISIONS = ("fp32", "bf16")
PAD = 0


@pytest.fixture(scope="module")
def fmt() -> ReadPromptFormat:
    # READ ran with --model_max_length=2048 (val_read.sh, test_read.sh; train_tokens.json's tokenizer).
    return ReadPromptFormat(CKPT, model_max_length=TRAIN["tokenizer"]["model_max_length"])


def _npz(case: str, precision: str) -> dict[str, np.ndarray]:
    with np.load(REF / "golden" / precision / f"{case}.npz") as z:
        return {k: z[k] for k in z.files}


def _strip_pad(ids: list[int]) -> tuple[list[int], int]:
    """(ids without the left / right pad, number of left pads)."""
    left = 0
    while left < len(ids) and ids[left] == PAD:
        left += 1
    right = len(ids)
    while right > left and ids[right - 1] == PAD:
        right -= 1
    return ids[left:right], left


def _split_single_turn(prompt: str) -> tuple[str, str, str | None]:
    """(system, question, answer) of a single-turn READ prompt (answer None for a generation prompt)."""
    head, question_answer = prompt.split(" USER: <im_start><image><im_end>\n")
    if question_answer.endswith(" ASSISTANT:"):
        return head, question_answer[: -len(" ASSISTANT:")], None
    question, answer = question_answer.split(" ASSISTANT: ")
    assert answer.endswith("</s>")
    return head, question, answer[: -len("</s>")]


# ------------------------------------------------------------------------------------------------- the folder


def test_ids_are_read_from_the_folder(fmt):
    tok = TRAIN["tokenizer"]
    assert fmt.seg_token_id == tok["seg_token_idx"] == 32000
    assert fmt.im_start_id == tok["default_im_start_token_idx"] == 32001
    assert fmt.im_end_id == tok["im_end_token_idx"] == 32002
    assert fmt.pad_id == tok["pad_token_id"] == 0
    assert (fmt.bos_id, fmt.eos_id, fmt.unk_id) == (1, 2, 0)
    assert len(fmt) == tok["len"] == 32003
    assert fmt.use_im_start_end is True
    assert fmt.image_token_index == IMAGE_TOKEN_INDEX == -200


def test_missing_tokenizer_model_is_a_clear_error(tmp_path):
    for name in ("added_tokens.json", "special_tokens_map.json", "tokenizer_config.json", "config.json"):
        shutil.copy(CKPT / name, tmp_path / name)
    with pytest.raises(ValueError, match="tokenizer.model") as err:
        ReadPromptFormat(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_missing_seg_token_is_a_clear_error(tmp_path):
    for name in ("tokenizer.model", "special_tokens_map.json", "tokenizer_config.json", "config.json"):
        shutil.copy(CKPT / name, tmp_path / name)
    (tmp_path / "added_tokens.json").write_text(json.dumps({"<im_start>": 32001, "<im_end>": 32002}))
    with pytest.raises(ValueError, match=r"\[SEG\]") as err:
        ReadPromptFormat(tmp_path)
    assert str(tmp_path) in str(err.value) and "added_tokens.json" in str(err.value)


# ------------------------------------------------------------------------------------------------- the rules


def test_tokenizer_rules_of_the_readme(fmt):
    """README item 6: text next to an added token is stripped, the special tokens strip nothing."""
    assert fmt.tokenize("<im_end>\nWhat") == ["<im_end>", "▁What"]
    assert fmt.tokenize("is [SEG].") == ["▁is", "[SEG]", "▁."]
    assert fmt.encode_text("is [SEG].", add_special_tokens=False) == [338, 32000, 869]
    assert fmt.tokenize("segmentation: [SEG]")[-2:] == [":", "[SEG]"]
    assert fmt.tokenize("yellow.</s>USER:") == ["▁yellow", ".", "</s>", "▁US", "ER", ":"]
    assert fmt.tokenize("a </s> b") == ["▁a", "▁", "</s>", "▁", "▁b"]
    assert fmt.tokenize("ASSISTANT: ")[-2:] == [":", "▁"]  # the lone "▁" READ's label arithmetic subtracts
    assert fmt.encode("x<image>y") == [1, 921, IMAGE_TOKEN_INDEX, 343]  # one placeholder, one BOS


def test_label_quirk_answer_not_absorbing_the_space(fmt):
    """READ masks `len(encode(instruction + " ASSISTANT: ")) - 2` tokens, i.e. assumes the space after
    "ASSISTANT:" merges into the answer's first piece. An answer starting with a digit (LLaMA splits digits) keeps
    a lone "▁", which READ therefore supervises (checked against transformers 4.31 + READ's collate code)."""
    prompt = fmt.build_prompt(LLAVA_V1, [("How many apples?", "3 apples.")])
    ids, labels = fmt.encode(prompt), fmt.labels(prompt)
    supervised = [t for t, lab in zip(fmt.convert_ids_to_tokens(ids), labels) if lab != IGNORE_INDEX]
    assert supervised == ["▁", "3", "▁app", "les", ".", "</s>"]
    prompt = fmt.build_prompt(LLAVA_V1, [("Where?", "The box.")])
    supervised = [t for t, lab in zip(fmt.convert_ids_to_tokens(fmt.encode(prompt)), fmt.labels(prompt))
                  if lab != IGNORE_INDEX]
    assert supervised == ["▁The", "▁box", ".", "</s>"]


def test_label_check_fails_like_read_on_a_literal_unk(fmt):
    """pad == <unk> == 0: READ counts non-pad tokens, so a literal "<unk>" in a conversation fails its check."""
    prompt = fmt.build_prompt(LLAVA_V1, [("What is <unk>?", "Nothing.")])
    with pytest.raises(ValueError, match="label check"):
        fmt.labels(prompt)


# ------------------------------------------------------------------------------------------------- cases.json


@pytest.mark.parametrize("case", sorted(CASES))
def test_case_input_ids(fmt, case):
    prompt = CASES[case]["common"]["prompt"]
    rows = {p: _npz(case, p) for p in PRECISIONS}
    assert rows["fp32"]["input_ids"].tolist() == rows["bf16"]["input_ids"].tolist()
    golden, left = _strip_pad(rows["fp32"]["input_ids"].tolist())
    ids = fmt.encode(prompt)
    assert ids == golden
    assert ids.count(IMAGE_TOKEN_INDEX) == 1 and ids[ids.index(IMAGE_TOKEN_INDEX) - 1] == fmt.im_start_id
    for p in PRECISIONS:
        z = rows[p]
        if "seg_token_positions_in_input_ids" in z:  # teacher-forced
            assert [left + i for i in fmt.seg_positions(ids)] == z["seg_token_positions_in_input_ids"].tolist()
        else:  # generation: prompt + generated ids
            full = ids + z["generated_ids"].tolist()
            assert [left + i for i in fmt.seg_positions(full)] == z["seg_token_positions_in_output_ids"].tolist()
            assert z["output_ids"].tolist() == z["input_ids"].tolist() + z["generated_ids"].tolist()


@pytest.mark.parametrize("case", sorted(CASES))
def test_case_prompt_from_its_parts(fmt, case):
    common = CASES[case]["common"]
    system, question, answer = _split_single_turn(common["prompt"])
    if common.get("question") is not None:  # generation cases record the question (test_read.py: vicuna_v1)
        assert question == common["question"] and answer is None
        assert system == VICUNA_V1.system
        assert fmt.build_prompt("vicuna_v1", [(common["question"], None)]) == common["prompt"]
    else:  # teacher-forced cases (train_read.py validate: llava_v1) record only the prompt
        assert system == LLAVA_V1.system and answer is not None
        assert fmt.build_prompt("llava_v1", [(question, answer)]) == common["prompt"]


def test_reasonseg_eval_prompt_from_reads_templates(fmt):
    """README item 10: `<image>\\nWhat is {class} in this image? Please output segmentation mask.` ->
    `Sure, the segmentation result is [SEG].`"""
    question = "What is yellow disc in this image? Please output segmentation mask."
    prompt = fmt.build_prompt("llava_v1", [(question, "Sure, the segmentation result is [SEG].")])
    assert prompt == CASES["tf_reasonseg_a1"]["common"]["prompt"]
    assert fmt.build_prompt("llava_v1", [(f"<image>\n{question}", "Sure, the segmentation result is [SEG].")]) \
        == prompt


def test_batches_pad_like_reads_collate_functions(fmt):
    # tf_refcoco_a2_{0,1}: one collate_fn_val batch (right padding); gen_fprefcoco_a3_{0,1}: collate_fn_test (left).
    for cases, side, mask_field in (
        (["tf_refcoco_a2_0", "tf_refcoco_a2_1"], "right", "attention_mask"),
        (["gen_fprefcoco_a3_0", "gen_fprefcoco_a3_1"], "left", "attention_mask_collate"),
    ):
        input_ids, mask = fmt.pad([fmt.encode(CASES[c]["common"]["prompt"]) for c in cases], side=side)
        for row, case in enumerate(cases):
            z = _npz(case, "fp32")
            assert input_ids[row].tolist() == z["input_ids"].tolist()
            assert mask[row].int().tolist() == z[mask_field].astype(int).tolist()


@pytest.mark.parametrize("case", sorted(c for c in CASES if c.startswith("gen_")))
def test_generated_text_decodes_like_read(fmt, case):
    common = CASES[case]["common"]
    for p in PRECISIONS:
        generated = _npz(case, p)["generated_ids"].tolist()
        assert fmt.convert_ids_to_tokens(generated) == common["generated_tokens"]
        assert fmt.decode(generated, skip_special_tokens=True) == common["generated_text"]


# ------------------------------------------------------------------------------------------------- train_tokens.json


@pytest.mark.parametrize("sample", sorted(TRAIN["samples"]))
def test_train_sample_tokens_and_labels(fmt, sample):
    s = TRAIN["samples"][sample]
    out = fmt.collate_train(s["conversation_list"])
    assert out["input_ids"].tolist() == s["input_ids"]
    assert out["labels"].tolist() == s["labels"]
    assert out["attention_masks"].int().tolist() == s["attention_masks"]
    for ids, tokens, label_tokens, labels in zip(s["input_ids"], s["tokens"], s["label_tokens"], s["labels"]):
        assert fmt.convert_ids_to_tokens(ids) == tokens
        assert [None if lab == IGNORE_INDEX else fmt.id_to_token(lab) for lab in labels] == label_tokens


@pytest.mark.parametrize("sample", sorted(TRAIN["samples"]))
def test_train_conversations_from_their_turns(fmt, sample):
    """The conversation strings are llava_v1 prompts with `<image>` expanded: split them into turns and rebuild."""
    for conversation in TRAIN["samples"][sample]["conversation_list"]:
        body = conversation[len(LLAVA_V1.system) + 1:]
        turns = []
        for round_text in body.split("</s>")[:-1]:
            question, answer = round_text[len("USER: "):].split(" ASSISTANT: ")
            turns.append((question.replace("<im_start><image><im_end>", "<image>"), answer))
        assert turns[0][0].startswith("<image>\n")
        assert fmt.build_prompt("llava_v1", turns) == conversation
        assert expand_image_tokens(LLAVA_V1.render(turns)) == conversation


def test_train_batch_of_all_three(fmt):
    batch = TRAIN["batch_of_all_three"]
    samples = TRAIN["samples"]
    conversations = [c for name in ("reason_seg", "refer_seg", "vqa") for c in samples[name]["conversation_list"]]
    assert conversations == batch["conversation_list"]
    out = fmt.collate_train(batch["conversation_list"])
    assert out["input_ids"].tolist() == batch["input_ids"]
    assert out["labels"].tolist() == batch["labels"]
    assert out["attention_masks"].int().tolist() == batch["attention_masks"]
    assert batch["pad_token_id"] == fmt.pad_id
