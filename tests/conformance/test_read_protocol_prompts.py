"""The `read` evaluation protocol's prompts against the prompts READ's own code built (the read-tiny oracle).

The oracle records, for teacher-forced ReasonSeg and RefCOCO queries and generated FP-RefCOCO queries, the exact
prompt string READ built and its input ids. Our protocol must build the same string and, through the release
folder's tokenizer, the same ids. READ draws its SESAME templates inside seeded DataLoader workers; the oracle's
drawn strings are taken as given (its README): the test recovers which templates READ drew from the strings, hands
those choices to our builder, and compares string for string and token for token. R-RefCOCO (no oracle case): the
expected prompt is written below from READ's files.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from model.read_release import ReadReleaseTokenizer
from pipelines.evaluate.protocol import (_read_prompt, load_protocol, protocol_prompts, read_templates,
                                         scored_queries)
from schemas.sample import Query, ShardSample
from tests.read_tiny import CKPT, REF, match_template, skip_without_oracle, split_prompt

skip_without_oracle("tokenizer.model")
CASES = json.loads((REF / "golden" / "cases.json").read_text())["cases"]
READ = load_protocol("read")


@pytest.fixture(scope="module")
def tokenizer():
    return ReadReleaseTokenizer.from_pretrained(CKPT)


class FixedDraw:
    """Stands in for the per-image `random.Random`, returning the template indices READ drew."""

    def __init__(self, *indices: int) -> None:
        self.indices = list(indices)

    def randrange(self, n: int) -> int:
        i = self.indices.pop(0)
        assert 0 <= i < n
        return i


def golden_ids(case: str) -> list[int]:
    g = np.load(REF / "golden" / "fp32" / f"{case}.npz")
    ids = g["input_ids"]
    keep = g["attention_mask"].astype(bool) if "attention_mask" in g else ids != 0
    return ids[keep].tolist()


def sample(dataset: str, queries: list[Query]) -> ShardSample:
    return ShardSample(key=f"{dataset}-val-0", dataset=dataset, split="val", image_bytes=b"", image_format="png",
                       height=1, width=1, queries=queries, source="test")


def render(tokenizer, p, *, generate: bool) -> str:
    system = READ.generate_system if generate else READ.teacher_forced_system
    return tokenizer.build_prompt(system, [(p.question, p.answer)])


@pytest.mark.parametrize("case", ["tf_reasonseg_a0", "tf_reasonseg_a1"])
def test_reasonseg_text0_prompt(tokenizer, case):
    prompt = CASES[case]["common"]["prompt"]
    question, _ = split_prompt(prompt)
    is_sentence = not question.startswith("<image>\nWhat is ")
    text = (question.removeprefix("<image>\n").removesuffix(" Please output segmentation mask.") if is_sentence
            else question.removeprefix("<image>\nWhat is ").removesuffix(" in this image? Please output segmentation "
                                                                          "mask."))
    mask = np.zeros((1, 1), np.uint8)
    queries = [Query(query_id="0", text=text.upper() if not is_sentence else text, is_sentence=is_sentence, mask=mask),
               Query(query_id="1", text="another text entry", mask=mask),
               Query(query_id="fp", text="a false premise", exists=False, query_type="false_premise")]
    s = sample("ReasonSeg", queries)
    scored = scored_queries(READ, s)
    assert [q.query_id for q in scored] == ["0"]  # READ's validation scores text[0] only
    (p,) = protocol_prompts(READ, s, scored, generate=False)
    built = render(tokenizer, p, generate=False)
    assert built == prompt  # a short query is lower-cased, as READ does
    assert tokenizer.encode(built) == golden_ids(case)


@pytest.mark.parametrize("case", ["tf_refcoco_a2_0", "tf_refcoco_a2_1", "gen_fprefcoco_a3_0", "gen_fprefcoco_a3_1"])
def test_sesame_template_prompts(tokenizer, case):
    common = CASES[case]["common"]
    generate = case.startswith("gen_")
    question, answer = split_prompt(common["prompt"])
    t = read_templates()
    qi, text = match_template(t["short_question"], question)
    exists = common.get("gt_exists", common.get("exists", True))
    kind = "short_answer" if exists else "correct_answer"
    ai = match_template(t[kind], answer)[0] if answer else 0
    query = Query(query_id="0", text=text, exists=exists, mask=None if not exists else np.zeros((1, 1), np.uint8),
                  gt_sent=None if exists else "green triangle")
    p = _read_prompt(query, "fprefcoco" if generate else "refcoco", FixedDraw(qi, ai), generate=generate)
    built = render(tokenizer, p, generate=generate)
    assert built == common["prompt"]
    assert p.template_id == f"read:short_question[{qi}]/{kind}[{ai}]"
    assert tokenizer.encode(built) == golden_ids(case)


def test_rrefcoco_generation_prompt(tokenizer):
    """R-RefCOCO (test_read.py --val_dataset rrefcoco): vicuna_v1, SESAME's first short question (READ
    dataloaders/qa_template.py SHORT_QUESTION_TEMPLATE[0]) with the expression lower-cased, no answer; an absent
    object draws from NEG_ANSWER_TEMPLATE (not CORRECT_ANSWER_TEMPLATE, which only fprefcoco* use)."""
    query = Query(query_id="0", text="The Purple Dog", exists=False)
    p = _read_prompt(query, "rrefcoco", FixedDraw(0, 5), generate=True)
    assert p.template_id == "read:short_question[0]/neg_answer[5]"
    expected = (
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions. USER: <im_start><image><im_end>\nCan you confirm if "
        "the purple dog is present in this image? If it is, kindly provide the segmentation map. If it isn't, please "
        "state so and, if appropriate, mention any objects that might be mistaken for the purple dog. ASSISTANT:"
    )
    assert render(tokenizer, p, generate=True) == expected


def test_draws_are_per_image_and_reproducible():
    mask = np.zeros((1, 1), np.uint8)
    queries = [Query(query_id=str(i), text=f"thing {i}", mask=mask) for i in range(5)]
    a = protocol_prompts(READ, sample("refcoco", queries), queries, generate=False)
    b = protocol_prompts(READ, sample("refcoco", queries), queries, generate=False)
    assert [p.template_id for p in a] == [p.template_id for p in b]
    assert len({p.template_id for p in a}) > 1
