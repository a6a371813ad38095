"""Training conversations built from shard samples, and the fixed evaluation prompts, in a v1 conversation template.

Prompt layout (`model.read_prompt.TEMPLATES`, llava_v1 by default: separators " " after the system text and user
turns, "</s>" after assistant turns):

    <SYSTEM> USER: <image>\\n{question} ASSISTANT: {answer}</s>USER: {question 2} ASSISTANT: {answer 2}</s>

A generation prompt stops right after the last "ASSISTANT:". `pipelines.data.tokenize` relies on exactly this layout.
The template is the model's prompt format (`model.prompt_format.PromptFormat.conversation`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model.prompt_format import ANSWER_STYLES
from model.read_prompt import LLAVA_V1, ConversationTemplate, conversation_template
from pipelines.data import templates
from pipelines.data.premises import PremisePolicy
from pipelines.sources import SEMSEG_DATASETS
from schemas.sample import Query, ShardSample

FALSE_PREMISE_QA = "false_premise"
"""`query_type` of ReasonSeg's `false_premise_QA` entries (pipelines.sources.reasonseg), answered by
`extra["answer"]`."""

SYSTEM = LLAVA_V1.system
"""LLaVA v1 system prompt (the default template's)."""
USER, ASSISTANT = LLAVA_V1.roles
"""Role names (the same in every v1 template)."""
EOS = LLAVA_V1.sep2
"""End of an assistant turn (the tokenizer's eos token)."""
ROUND_SEP = LLAVA_V1.sep
"""Separator after the system text and after each user turn."""


@dataclass(kw_only=True)
class Conversation:
    """One training conversation about one image.

    Attributes:
        turns: (question, answer) pairs; the first question starts with "<image>\\n".
        masks: uint8 (H, W) masks in {0, 1, 255}, one per [SEG] in the answers, in order.
        query_ids: the queries this conversation asks about (empty for VQA).
        kind: "seg" (answer with [SEG]), "denial", "correction" or "vqa".
        meta: free-form info carried into the batch (dataset, query_type, ...).
        template: the conversation template its prompt is written in.
    """

    turns: list[tuple[str, str]]
    masks: list[np.ndarray] = field(default_factory=list)
    query_ids: list[str] = field(default_factory=list)
    kind: str = "seg"
    meta: dict[str, Any] = field(default_factory=dict)
    template: ConversationTemplate = LLAVA_V1

    @property
    def prompt(self) -> str:
        return build_prompt(self.turns, template=self.template)


def build_prompt(turns: list[tuple[str, str | None]], *, template: ConversationTemplate = LLAVA_V1) -> str:
    """(question, answer) pairs -> prompt text in `template` (llava_v1 by default). An answer of None (last turn
    only) ends at "ASSISTANT:"."""
    user, assistant = template.roles
    out = template.system + template.sep
    for i, (question, answer) in enumerate(turns):
        for text in (question, answer or ""):
            if template.sep2 in text:
                raise ValueError(f"conversation turn {i} contains the end-of-turn marker {template.sep2!r}: "
                                 f"{text[:80]!r}")
        out += f"{user}: {question}{template.sep}"
        if answer is None:
            if i != len(turns) - 1:
                raise ValueError(f"conversation turn {i} has no answer but is not the last turn")
            out += f"{assistant}:"
        else:
            out += f"{assistant}: {answer}{template.sep2}"
    return out


def eval_question(text: str, *, is_sentence: bool) -> str:
    """The fixed evaluation question for a query (short or long template; a short query lower-cased, as READ)."""
    if is_sentence:
        return templates.EVAL_LONG_QUESTION.format(sent=text)
    return templates.EVAL_SHORT_QUESTION.format(class_name=templates.as_prompted(text, is_sentence=False))


def eval_prompt(text: str, *, is_sentence: bool, with_answer: bool, answer_style: str = "plain",
                conversation: str = LLAVA_V1.name) -> str:
    """Evaluation prompt with the fixed templates.

    Args:
        text: the query text; is_sentence: long (sentence) template when True.
        with_answer: True -> teacher-forced prompt holding the fixed answer with one [SEG];
            False -> generation prompt ending at "ASSISTANT:".
        answer_style: the style the model was trained with (model.prompt_format.ANSWER_STYLES); "echo" names a short query
            in the teacher-forced answer.
        conversation: the conversation template the model was trained with (`model.read_prompt.TEMPLATES`).
    """
    question = eval_question(text, is_sentence=is_sentence)
    template = conversation_template(conversation)
    if not with_answer:
        return build_prompt([(question, None)], template=template)
    _check_answer_style(answer_style)
    echo = _names_query(answer_style, is_sentence=is_sentence)
    named = templates.as_prompted(text, is_sentence=is_sentence)
    answer = templates.EVAL_ECHO_ANSWER.format(class_name=named) if echo else templates.EVAL_ANSWER
    return build_prompt([(question, answer)], template=template)


def _check_answer_style(answer_style: str) -> None:
    if answer_style not in ANSWER_STYLES:
        raise ValueError(f"answer_style must be one of {ANSWER_STYLES}, got {answer_style!r}")


def _names_query(answer_style: str, *, is_sentence: bool) -> bool:
    """Whether a true query's answer names it before its [SEG]: echo style, short queries only (a sentence query
    keeps READ's answers in every style)."""
    return answer_style == "echo" and not is_sentence


def build_conversations(
    sample: ShardSample, *, rng: random.Random, num_classes_per_sample: int, answer_style: str = "plain",
    conversation: str = LLAVA_V1.name, premises: PremisePolicy = PremisePolicy(),
) -> list[Conversation]:
    """Training conversations for one shard sample (all on its image), in the premise mode drawn for it.

    VQA samples (with a `conversation`) give their conversation as is (multi-turn, no masks). Otherwise one premise
    mode is drawn per sample (`premises`, READ's rule), then up to `num_classes_per_sample` queries are drawn without
    replacement, each becoming one single-turn conversation:
    - true premise: a true query -> answer with one [SEG] and its mask; an absent object (exists False, no gt_sent)
      -> denial; a false premise (exists False, gt_sent set) -> correction;
    - semantic segmentation in denial / correction mode: each drawn class is replaced by a class of the dataset
      absent from the image (`extra["absent_classes"]`), denied, or corrected to the present class;
    - ReasonSeg in false-premise mode: the drawn `false_premise_QA` entries with their own answers.
    Denials and corrections carry no [SEG] and no mask. `answer_style` "echo" answers a true short query by naming
    it before its [SEG] (templates.ECHO_ANSWERS). Samples of other datasets draw no mode (no random number used).
    Every conversation is written in the `conversation` template (`model.read_prompt.TEMPLATES`).
    """
    template = conversation_template(conversation)
    convs = _drawn_conversations(sample, rng=rng, num_classes_per_sample=num_classes_per_sample,
                                 answer_style=answer_style, premises=premises)
    for conv in convs:
        conv.template = template
    return convs


def _drawn_conversations(
    sample: ShardSample, *, rng: random.Random, num_classes_per_sample: int, answer_style: str,
    premises: PremisePolicy,
) -> list[Conversation]:
    meta = {"dataset": sample.dataset, "key": sample.key}
    if sample.conversation is not None:
        return [Conversation(turns=vqa_turns(sample), kind="vqa", meta={**meta, "query_type": "vqa"})]
    if num_classes_per_sample <= 0:
        raise ValueError(f"num_classes_per_sample must be > 0, got {num_classes_per_sample}")
    _check_answer_style(answer_style)
    k = num_classes_per_sample
    if sample.dataset in SEMSEG_DATASETS:
        mode = premises.semseg_mode(rng)
        absent = list((sample.extra or {}).get("absent_classes", []))
        if mode != "true" and absent:
            picked = rng.sample(sample.queries, k=min(k, len(sample.queries), len(absent)))
            false = rng.sample(absent, k=len(picked))
            return [absent_class_conversation(q, f, mode=mode, rng=rng, meta=meta) for q, f in zip(picked, false)]
    pool = sample.queries
    answered = [q for q in pool if _answers_itself(q)]
    if answered:
        if premises.reasonseg_false_premise(rng):
            picked = rng.sample(answered, k=min(k, len(answered)))
            return [false_premise_qa_conversation(q, rng=rng, meta=meta) for q in picked]
        pool = [q for q in pool if not _answers_itself(q)]
    picked = rng.sample(pool, k=min(k, len(pool)))
    return [query_conversation(q, rng=rng, meta=meta, answer_style=answer_style) for q in picked]


def _answers_itself(query: Query) -> bool:
    """A ReasonSeg `false_premise_QA` entry: it carries its own answer text."""
    return query.query_type == FALSE_PREMISE_QA and "answer" in (query.extra or {})


def query_conversation(
    query: Query, *, rng: random.Random, meta: dict[str, Any], answer_style: str = "plain"
) -> Conversation:
    """One single-turn training conversation for one query (random templates from `rng`; short queries lower-cased
    in questions and answers, as READ)."""
    text = templates.as_prompted(query_phrase(query, rng), is_sentence=query.is_sentence)
    if query.is_sentence:
        question = rng.choice(templates.LONG_QUESTIONS).format(sent=text)
    else:
        question = rng.choice(templates.SHORT_QUESTIONS).format(class_name=text)
    info = {**meta, "query_type": query.query_type}
    if query.exists:
        assert query.mask is not None, f"query {query.query_id} exists without a mask"  # schemas.sample.validate
        if _names_query(answer_style, is_sentence=query.is_sentence):
            answer = rng.choice(templates.ECHO_ANSWERS).format(class_name=text)
        elif query.is_sentence:
            answer = rng.choice(templates.LONG_ANSWERS)
        else:
            answer = rng.choice(templates.SHORT_ANSWERS)
        return Conversation(
            turns=[(question, answer)], masks=[query.mask], query_ids=[query.query_id], kind="seg",
            meta=info,
        )
    if query.gt_sent:
        gt_sent = templates.as_prompted(query.gt_sent, is_sentence=query.is_sentence)
        answer = rng.choice(templates.CORRECTIONS).format(false=text, gt_sent=gt_sent)
        kind = "correction"
    else:
        answer = rng.choice(templates.DENIALS).format(class_name=text)
        kind = "denial"
    return Conversation(turns=[(question, answer)], query_ids=[query.query_id], kind=kind, meta=info)


def class_phrase(name: str | list[str], rng: random.Random) -> str:
    """A semantic-segmentation class as READ names it in a question: a class name as is, an [object, part] pair as
    "<object> <part>" or "the <part> of the <object>", each with probability 1/2 (READ's `generate_class_names`)."""
    if isinstance(name, str):
        return name
    obj, part = name
    return f"{obj} {part}" if rng.random() < 0.5 else f"the {part} of the {obj}"


def query_phrase(query: Query, rng: random.Random) -> str:
    """A query's text, or for a part query (`extra` object and part) one of READ's two phrasings, drawn."""
    extra = query.extra or {}
    if "part" in extra and "object" in extra:
        return class_phrase([extra["object"], extra["part"]], rng)
    return query.text


def absent_class_conversation(
    present: Query, absent_class: str | list[str], *, mode: str, rng: random.Random, meta: dict[str, Any]
) -> Conversation:
    """A semantic-segmentation false premise (READ's SemSegDataset): a question about `absent_class` (a name or an
    [object, part] pair), answered by a denial, or by a correction naming the `present` query's class. No [SEG], no
    mask."""
    false = templates.as_prompted(class_phrase(absent_class, rng), is_sentence=False)
    question = rng.choice(templates.SHORT_QUESTIONS).format(class_name=false)
    if mode == "denial":
        answer = rng.choice(templates.DENIALS).format(class_name=false)
    else:
        gt_sent = templates.as_prompted(query_phrase(present, rng), is_sentence=False)
        answer = rng.choice(templates.CORRECTIONS).format(false=false, gt_sent=gt_sent)
    info = {**meta, "query_type": f"absent_class_{mode}", "absent_class": false}
    return Conversation(turns=[(question, answer)], query_ids=[present.query_id], kind=mode, meta=info)


def false_premise_qa_conversation(query: Query, *, rng: random.Random, meta: dict[str, Any]) -> Conversation:
    """A ReasonSeg `false_premise_QA` entry as READ trains it: its question in a long or short template (READ does
    not lower-case it), answered with the entry's own answer text. No [SEG], no mask."""
    if query.is_sentence:
        question = rng.choice(templates.LONG_QUESTIONS).format(sent=query.text)
    else:
        question = rng.choice(templates.SHORT_QUESTIONS).format(class_name=query.text)
    answer = str(query.extra["answer"])
    return Conversation(turns=[(question, answer)], query_ids=[query.query_id], kind="correction",
                        meta={**meta, "query_type": query.query_type})


def vqa_turns(sample: ShardSample) -> list[tuple[str, str]]:
    """A VQA sample's conversation -> (question, answer) pairs; the first question starts with "<image>\\n".

    A leading non-human turn is dropped; turns must then alternate human/gpt. Any "<image>" in the text is moved to
    the start of the first question (LLaVA-Instruct puts it before or after the text).
    """
    msgs = list(sample.conversation or [])
    while msgs and msgs[0].get("from") != "human":
        msgs = msgs[1:]
    turns: list[tuple[str, str]] = []
    for i in range(0, len(msgs) - 1, 2):
        human, gpt = msgs[i], msgs[i + 1]
        if human.get("from") != "human" or gpt.get("from") != "gpt":
            raise ValueError(
                f"sample {sample.key}: VQA turns {i},{i + 1} are {human.get('from')!r},{gpt.get('from')!r}; "
                "expected alternating 'human','gpt'"
            )
        turns.append((_without_image(human["value"]), _without_image(gpt["value"])))
    if not turns:
        raise ValueError(f"sample {sample.key}: VQA conversation has no human/gpt pair")
    turns[0] = (templates.IMAGE_TOKEN + "\n" + turns[0][0], turns[0][1])
    return turns


def _without_image(text: str) -> str:
    """A turn without `<image>`: a turn holding it loses it and is stripped (READ's `preprocess_multimodal` rewrites
    only such turns); any other turn is kept verbatim."""
    if templates.IMAGE_TOKEN not in text:
        return text
    return text.replace(templates.IMAGE_TOKEN, "").strip()
