"""Conversations: LLaVA v1 layout, the kind of answer per query type, VQA pass-through, eval prompts."""

from __future__ import annotations

import random

import pytest

from pipelines.data import templates
from pipelines.data.conversation import SYSTEM, build_conversations, build_prompt, eval_prompt, vqa_turns
from tests.fixtures.data import make_refer_sample, make_vqa_sample


def test_build_prompt_llava_v1_layout():
    prompt = build_prompt([("<image>\nQ1", "A1"), ("Q2", "A2")])
    assert prompt == f"{SYSTEM} USER: <image>\nQ1 ASSISTANT: A1</s>USER: Q2 ASSISTANT: A2</s>"
    assert build_prompt([("<image>\nQ", None)]) == f"{SYSTEM} USER: <image>\nQ ASSISTANT:"
    with pytest.raises(ValueError, match="end-of-turn"):
        build_prompt([("Q", "bad </s> answer")])


def test_eval_prompts_use_fixed_templates():
    gen = eval_prompt("the cat", is_sentence=False, with_answer=False)
    assert gen.endswith("USER: <image>\nWhat is the cat in this image? Please output segmentation mask. ASSISTANT:")
    tf = eval_prompt("Where do I sit?", is_sentence=True, with_answer=True)
    assert tf.endswith("<image>\nWhere do I sit? Please output segmentation mask. ASSISTANT: "
                       "Sure, the segmentation result is [SEG].</s>")


def test_each_query_kind_gets_its_answer():
    sample = make_refer_sample(3, num_true=1)
    convs = build_conversations(sample, rng=random.Random(0), num_classes_per_sample=len(sample.queries))
    assert len(convs) == len(sample.queries)
    by_id = {c.query_ids[0]: c for c in convs}
    true, long_, neg, fp = by_id["3:0"], by_id["3:long"], by_id["3:neg"], by_id["3:fp"]
    for conv in (true, long_):
        assert conv.kind == "seg" and len(conv.masks) == 1 and conv.prompt.count("[SEG]") == 1
    assert true.turns[0][0] in {t.format(class_name="the red box 0") for t in templates.SHORT_QUESTIONS} | {
        t.format(class_name="the blue box 0") for t in templates.SHORT_QUESTIONS}
    assert long_.turns[0][1] in templates.LONG_ANSWERS
    assert "Which object would you use to carry water?" in long_.turns[0][0]
    assert neg.kind == "denial" and not neg.masks and "[SEG]" not in neg.prompt
    assert neg.turns[0][1] in {t.format(class_name="the purple cat") for t in templates.DENIALS}
    assert fp.kind == "correction" and not fp.masks and "[SEG]" not in fp.prompt
    assert fp.turns[0][1] in {t.format(false="the green box", gt_sent="the red box") for t in templates.CORRECTIONS}


def test_num_classes_per_sample_and_seeded_choice():
    sample = make_refer_sample(4, num_true=3)  # 6 queries
    a = build_conversations(sample, rng=random.Random(7), num_classes_per_sample=3)
    b = build_conversations(sample, rng=random.Random(7), num_classes_per_sample=3)
    assert len(a) == 3 and len({c.query_ids[0] for c in a}) == 3
    assert [c.prompt for c in a] == [c.prompt for c in b]
    picks = {tuple(c.query_ids[0] for c in build_conversations(sample, rng=random.Random(s), num_classes_per_sample=3))
             for s in range(10)}
    assert len(picks) > 1  # the choice really depends on the rng


def test_vqa_conversation_passes_through_with_image_first():
    sample = make_vqa_sample(0)
    turns = vqa_turns(sample)
    assert turns == [("<image>\nWhat colour is the box?", "The box is red."), ("Is it large?", "No, it is small.")]
    (conv,) = build_conversations(sample, rng=random.Random(0), num_classes_per_sample=3)
    assert conv.kind == "vqa" and conv.masks == [] and conv.prompt.count("</s>") == 2


def test_echo_answers_name_short_queries_before_their_seg():
    sample = make_refer_sample(3, num_true=1)
    convs = build_conversations(sample, rng=random.Random(0), num_classes_per_sample=len(sample.queries),
                                answer_style="echo")
    by_id = {c.query_ids[0]: c for c in convs}
    true, long_, neg = by_id["3:0"], by_id["3:long"], by_id["3:neg"]
    text = next(q.text for q in sample.queries if q.query_id == "3:0")
    assert true.turns[0][1] in {t.format(class_name=text) for t in templates.ECHO_ANSWERS}
    assert f"{text} [SEG]" in true.turns[0][1] or f"{text} is [SEG]" in true.turns[0][1]
    assert true.prompt.count("[SEG]") == 1 and len(true.masks) == 1
    assert long_.turns[0][1] in templates.LONG_ANSWERS  # sentences keep READ's answers
    assert neg.kind == "denial"
    with pytest.raises(ValueError, match="answer_style"):
        build_conversations(sample, rng=random.Random(0), num_classes_per_sample=1, answer_style="loud")


def test_echo_eval_prompt_names_short_queries_only():
    tf = eval_prompt("the cat", is_sentence=False, with_answer=True, answer_style="echo")
    assert tf.endswith("ASSISTANT: Sure, the cat [SEG].</s>")
    long_ = eval_prompt("Where do I sit?", is_sentence=True, with_answer=True, answer_style="echo")
    assert long_.endswith("ASSISTANT: Sure, the segmentation result is [SEG].</s>")
    gen = eval_prompt("the cat", is_sentence=False, with_answer=False, answer_style="echo")
    assert gen == eval_prompt("the cat", is_sentence=False, with_answer=False)
