"""Named evaluation protocols (`jobs.evaluate protocol=<name>`): which queries are scored and the exact prompt
each one gets. The settings live in configs/protocols/<name>.yaml; READ's SESAME templates in
configs/protocols/read_templates.json (data, with their source)."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from omegaconf import OmegaConf

from model.read_prompt import TEMPLATES
from pipelines.data import templates
from pipelines.data.conversation import eval_question
from schemas.sample import Query, ShardSample

PROTOCOL_DIR = Path(__file__).resolve().parents[2] / "configs" / "protocols"
READ_TEMPLATES = PROTOCOL_DIR / "read_templates.json"
MODEL_SYSTEM = "model"
"""A protocol's system setting meaning "the conversation template of the checkpoint's prompt format"."""


@dataclass(frozen=True, kw_only=True)
class EvalProtocol:
    """One evaluation protocol (see configs/protocols/*.yaml for the two shipped ones)."""

    name: str
    teacher_forced_system: str = "llava_v1"
    """Conversation template of teacher-forced prompts: llava_v1 | vicuna_v1 | model (the checkpoint's prompt
    format, `prompt_format.conversation`)."""
    generate_system: str = "llava_v1"
    """Conversation template of generation prompts (same choices)."""
    reasonseg_texts: str = "all"
    """ReasonSeg: all (every text entry) | first (text[0] only, as READ's validation)."""
    refer_templates: str = "fixed"
    """Non-ReasonSeg teacher-forced prompts: fixed (our templates) | read (SESAME's, drawn per query)."""
    generate_question: str = "fixed"
    """Generation questions: fixed | read (SESAME's, drawn per query)."""
    template_seed: int = 0
    """Seed of the per-image template draws."""
    max_new_tokens: int = 0
    """Generation budget; 0: the job's max_new_tokens."""
    generation_padding: str = "none"
    """none: each generation prompt alone | read: an image's prompts left-padded with the pad token to the longest,
    padding attended (READ's test script)."""
    template_choices: dict = field(default_factory=dict)
    """Pinned template draws, {query_id: {"question": i, "answer": j}} (indices into read_templates.json), e.g. the
    choices READ's own run made (from its logs); other queries keep the seeded draw. Given in the YAML, or as
    `template_choices_file` (JSON, relative to the YAML's folder)."""

    def __post_init__(self) -> None:
        systems = (*TEMPLATES, MODEL_SYSTEM)
        for key, allowed in (("teacher_forced_system", systems), ("generate_system", systems),
                             ("reasonseg_texts", ("all", "first")), ("refer_templates", ("fixed", "read")),
                             ("generate_question", ("fixed", "read")), ("generation_padding", ("none", "read"))):
            if getattr(self, key) not in allowed:
                raise ValueError(f"protocol {self.name}: {key} must be one of {allowed}, got {getattr(self, key)!r}")

    def system(self, *, generate: bool, model_conversation: str) -> str:
        """The conversation template of a generation or teacher-forced prompt, for a model whose prompt format
        writes `model_conversation`."""
        system = self.generate_system if generate else self.teacher_forced_system
        return model_conversation if system == MODEL_SYSTEM else system


def load_protocol(name_or_path: str) -> EvalProtocol:
    """A shipped protocol by name (configs/protocols/<name>.yaml) or a YAML file of the same keys."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROTOCOL_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem for p in PROTOCOL_DIR.glob("*.yaml"))
        raise ValueError(f"protocol={name_or_path!r}: no such protocol; choose one of {shipped} or a YAML file")
    settings = OmegaConf.to_container(OmegaConf.load(path))
    choices_file = settings.pop("template_choices_file", "")
    if choices_file:
        settings["template_choices"] = json.loads((path.parent / choices_file).read_text())
    try:
        return EvalProtocol(**settings)
    except TypeError as err:
        raise ValueError(f"protocol={name_or_path!r}: {err}") from err


@lru_cache(maxsize=1)
def read_templates() -> dict[str, list[str]]:
    """SESAME's question and answer templates as READ uses them (short_question, short_answer, neg_answer,
    correct_answer; each question starts with "<image>\\n")."""
    return json.loads(READ_TEMPLATES.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class ProtocolPrompt:
    """One scored query: the turns of its conversation and which templates made them."""

    query: Query
    question: str
    answer: str | None
    template_id: str


def is_reasonseg(dataset: str) -> bool:
    """Whether a dataset name is ReasonSeg's, whatever its spelling ("ReasonSeg", "reason_seg", ...)."""
    return "reasonseg" in re.sub(r"[^a-z]", "", dataset.lower())


def scored_queries(protocol: EvalProtocol, sample: ShardSample) -> list[Query]:
    """The queries of `sample` the protocol scores: READ's ReasonSeg validation scores only text[0] (never the
    FP-Aug false-premise entries)."""
    if protocol.reasonseg_texts == "first" and is_reasonseg(sample.dataset):
        texts = [q for q in sample.queries if q.query_type != "false_premise"]
        return texts[:1]
    return list(sample.queries)


def protocol_prompts(protocol: EvalProtocol, sample: ShardSample, queries: list[Query], *, generate: bool,
                     answer_style: str = "plain") -> list[ProtocolPrompt]:
    """The (question, answer) turn of each query; `answer` None for a generation prompt."""
    draw = random.Random(f"{protocol.template_seed}:{sample.key}")
    use_read = protocol.generate_question == "read" if generate else (
        protocol.refer_templates == "read" and not is_reasonseg(sample.dataset))
    out = []
    for q in queries:
        if use_read:
            pinned = protocol.template_choices.get(q.query_id)
            out.append(_read_prompt(q, sample.dataset, _Pinned(draw, pinned) if pinned else draw,
                                    generate=generate))
        else:
            out.append(_fixed_prompt(q, generate=generate, answer_style=answer_style))
    return out


class _Pinned:
    """The per-image draw with a query's pinned choices: the draws still happen (later queries of the image get
    the same templates as without the pin), their results are replaced."""

    def __init__(self, draw: random.Random, pinned: dict) -> None:
        self.draw, self.values = draw, [int(pinned["question"]), int(pinned["answer"])]

    def randrange(self, n: int) -> int:
        self.draw.randrange(n)
        value = self.values.pop(0)
        if not 0 <= value < n:
            raise ValueError(f"pinned template index {value} is outside the {n} templates")
        return value


def _fixed_prompt(q: Query, *, generate: bool, answer_style: str) -> ProtocolPrompt:
    question = eval_question(q.text, is_sentence=q.is_sentence)
    if generate:
        return ProtocolPrompt(q, question, None, "eval_long" if q.is_sentence else "eval_short")
    echo = answer_style == "echo" and not q.is_sentence
    named = templates.as_prompted(q.text, is_sentence=q.is_sentence)
    answer = templates.EVAL_ECHO_ANSWER.format(class_name=named) if echo else templates.EVAL_ANSWER
    return ProtocolPrompt(q, question, answer, ("eval_long" if q.is_sentence else "eval_short") +
                          ("/echo" if echo else ""))


def _read_prompt(q: Query, dataset: str, draw: random.Random, *, generate: bool) -> ProtocolPrompt:
    """READ's `create_conversations`: a question template, then an answer template (drawn even for generation)."""
    t = read_templates()
    name = q.text.strip().lower()
    qi = draw.randrange(len(t["short_question"]))
    question = t["short_question"][qi].format(class_name=q.text.lower())
    if q.exists:
        kind = "short_answer"
    elif dataset.lower() in ("fprefcoco", "fprefcoco+", "fprefcocog"):
        kind = "correct_answer"
    else:
        kind = "neg_answer"
    ai = draw.randrange(len(t[kind]))
    answer = t[kind][ai].format(class_name=name, gt_name=(q.gt_sent or "").strip().lower())
    return ProtocolPrompt(q, question, None if generate else answer, f"read:short_question[{qi}]/{kind}[{ai}]")
