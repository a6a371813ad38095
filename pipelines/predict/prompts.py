"""The token ids a checkpoint is fed for a request, in the checkpoint's own prompt format.

Two formats:
  * READ layout (a release folder; tokenizer = `model.read_prompt.ReadPromptFormat`): READ's tokenisation, with
    `<image>` wrapped in `<im_start>`/`<im_end>` and READ's conversation templates: for `query=` in segment mode the
    ReasonSeg evaluation question and answer under the llava_v1 system prompt (what READ's validation feeds), in
    generate mode the query as the question under the vicuna_v1 system prompt (what READ's test script feeds).
  * ours (exports, llava-hf builds): `pipelines.data.conversation.eval_prompt` and `pipelines.data.tokenize`.
A `prompt=` is used as given (a READ-layout `<image>` without `<im_start>` is wrapped).
"""

from __future__ import annotations

from typing import Any

import torch

from model.prompt_format import PromptFormat
from model.read_prompt import IMAGE_TOKEN, ReadPromptFormat, expand_image_tokens
from model.read_release import expand_read_ids
from pipelines.data import templates
from pipelines.data.conversation import eval_prompt, eval_question
from pipelines.data.tokenize import tokenize
from pipelines.predict.requests import PredictRequest

SENTENCE_ENDINGS = (".", "?", "!")
"""A query ending with one of these is a sentence (long template); otherwise a phrase (short template)."""

READ_SEGMENT_SYSTEM = "llava_v1"
"""System prompt READ's training and validation (train_read.py) use."""
READ_GENERATE_SYSTEM = "vicuna_v1"
"""System prompt READ's generation script (test_read.py) uses."""


def is_sentence(query: str) -> bool:
    return query.rstrip().endswith(SENTENCE_ENDINGS)


def prompt_text(request: PredictRequest, tokenizer: Any, prompt_format: PromptFormat | None = None) -> str:
    """The conversation text fed for `request` (its `prompt`, or one built from its `query`: READ's prompts for a
    release folder, else the fixed evaluation prompts in `prompt_format`, default READ's)."""
    segment = request.mode == "segment"
    if isinstance(tokenizer, ReadPromptFormat):
        if request.prompt:
            text = request.prompt
            if tokenizer.use_im_start_end and "<im_start>" not in text:
                text = expand_image_tokens(text)
        elif segment:
            question = eval_question(request.query, is_sentence=is_sentence(request.query))
            text = tokenizer.build_prompt(READ_SEGMENT_SYSTEM, [(question, templates.EVAL_ANSWER)])
        else:
            text = tokenizer.build_prompt(READ_GENERATE_SYSTEM, [(request.query, None)])
    elif request.prompt:
        text = request.prompt
    else:
        fmt = prompt_format or PromptFormat()
        text = eval_prompt(request.query, is_sentence=is_sentence(request.query), with_answer=segment,
                           answer_style=fmt.answer_style, conversation=fmt.conversation)
    _check(text, request, tokenizer)
    return text


def _check(text: str, request: PredictRequest, tokenizer: Any) -> None:
    if text.count(IMAGE_TOKEN) != 1:
        raise ValueError(f"request {request.request_id}: the prompt must hold exactly one {IMAGE_TOKEN}, it holds "
                         f"{text.count(IMAGE_TOKEN)}")
    if request.mode == "segment" and templates.SEG_TOKEN not in text:
        raise ValueError(f"request {request.request_id}: mode=segment needs the answer with its [SEG] in the prompt "
                         "(teacher-forced); use mode=generate for a prompt ending at 'ASSISTANT:'")
    if request.mode == "generate" and not text.rstrip().endswith("ASSISTANT:"):
        raise ValueError(f"request {request.request_id}: mode=generate needs a prompt ending with 'ASSISTANT:'")


def prompt_ids(text: str, tokenizer: Any, num_image_tokens: int) -> torch.Tensor:
    """(T,) long ids of `text` with the image expanded to `num_image_tokens` copies of the image token."""
    if isinstance(tokenizer, ReadPromptFormat):
        image_token_id = getattr(tokenizer, "image_token_id", -1)
        if image_token_id < 0:
            raise ValueError("a READ-layout tokenizer needs the model's image placeholder id (load the folder with "
                             "model.read_release.load_read_release)")
        return expand_read_ids(tokenizer.encode(text), image_token_id, num_image_tokens)
    ids_T, _ = tokenize(text, tokenizer, num_image_tokens)
    return ids_T
