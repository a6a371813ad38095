"""Prompt text -> token ids and labels, with `<image>` expanded and only assistant answers supervised.

The prompt (LLaVA v1 layout, see `pipelines.data.conversation`) is cut into segments and each segment is tokenised on
its own, so the label mask is exact whatever the tokenizer does with spaces at the boundaries:

    [bos] | "<SYSTEM> USER: " | <image> x P | "\\n{question} ASSISTANT:" | "{answer}" | </s> | "USER: ..." ...
      -100      -100              -100              -100                    ids       eos     -100

The space after "ASSISTANT:" belongs to the separator: the answer is tokenised without a leading space, which is
also what a model generating after a prompt that ends at "ASSISTANT:" produces. Splitting at `<image>` and
tokenising the pieces separately is how LLaVA itself builds image prompts.
"""

from __future__ import annotations

from typing import Any

import torch

from model.read_prompt import IM_START_TOKEN, ReadPromptFormat, expand_image_tokens
from model.tokenizer import SEG_SPACING_KEY
from pipelines.data.conversation import ASSISTANT, EOS, ROUND_SEP
from pipelines.data.templates import IMAGE_TOKEN, SEG_TOKEN

IGNORE_INDEX = -100
"""Label value that cross-entropy ignores."""

_ANSWER_MARK = f"{ROUND_SEP}{ASSISTANT}:"


def prompt_segments(prompt: str) -> list[tuple[str, bool]]:
    """Split a LLaVA v1 prompt into (text, supervised) segments; "</s>" is its own supervised segment.

    Every "... ASSISTANT: answer</s>" round gives (prefix up to "ASSISTANT:", False), (answer, True), ("</s>", True);
    text after the last "</s>" (a generation prompt ending at "ASSISTANT:") is one unsupervised segment.
    """
    chunks = prompt.split(EOS)
    segments: list[tuple[str, bool]] = []
    for i, chunk in enumerate(chunks[:-1]):
        at = chunk.find(_ANSWER_MARK)
        if at < 0:
            raise ValueError(f"prompt round {i} has no {_ANSWER_MARK!r} before {EOS!r}: {chunk[-120:]!r}")
        head = chunk[: at + len(_ANSWER_MARK)]
        answer = chunk[at + len(_ANSWER_MARK):]
        answer = answer[1:] if answer.startswith(" ") else answer
        segments += [(head, False), (answer, True), (EOS, True)]
    if chunks[-1]:
        segments.append((chunks[-1], False))
    return segments


def tokenize(
    prompt: str, tokenizer: Any, num_image_tokens: int, *, max_length: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenise a prompt and build its labels.

    Args:
        prompt: LLaVA v1 prompt text (training with answers, or a generation prompt ending at "ASSISTANT:").
        tokenizer: a Hugging Face tokenizer whose vocabulary has "<image>" and "[SEG]" as single tokens and an eos.
        num_image_tokens: P, copies of the image token id that replace each "<image>".
        max_length: truncate to this many tokens; a truncation that would cut an image token or a [SEG] raises.

    Returns:
        input_ids (T,) long and labels (T,) long: the ids on answer tokens (including each "</s>"), -100 elsewhere.

    Raises:
        ValueError: the tokenizer splits "[SEG]" (count of [SEG] ids != count in the text), or truncation would drop
            image tokens or [SEG] tokens.
    """
    if isinstance(tokenizer, ReadPromptFormat):
        return _tokenize_read(prompt, tokenizer, num_image_tokens, max_length=max_length)
    image_id = _single_token_id(tokenizer, IMAGE_TOKEN)
    seg_id = _single_token_id(tokenizer, SEG_TOKEN)
    eos_id = tokenizer.eos_token_id
    if eos_id is None:
        raise ValueError("tokenizer has no eos token; the LLaVA v1 format ends every answer with </s>")
    strip = seg_spacing(tokenizer) == "strip"
    ids: list[int] = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    labels: list[int] = [IGNORE_INDEX] * len(ids)
    for text, supervised in prompt_segments(prompt):
        if text == EOS:
            piece = [eos_id]
        else:
            piece = []
            for j, part in enumerate(text.split(IMAGE_TOKEN)):
                if j > 0:
                    piece += [image_id] * num_image_tokens
                if part:
                    piece += _encode_text(part, tokenizer, seg_id, strip=strip)
        ids += piece
        labels += piece if supervised else [IGNORE_INDEX] * len(piece)
    num_seg_text = prompt.count(SEG_TOKEN)
    if ids.count(seg_id) != num_seg_text:
        raise ValueError(
            f"prompt has {num_seg_text} {SEG_TOKEN} but its tokens hold {ids.count(seg_id)} [SEG] ids; the tokenizer "
            f"must keep {SEG_TOKEN} as one added token (prompt ends {prompt[-80:]!r})"
        )
    return _truncate(ids, labels, seg_id=seg_id, image_id=image_id, max_length=max_length)


def _tokenize_read(
    prompt: str, tokenizer: ReadPromptFormat, num_image_tokens: int, *, max_length: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """READ's own tokenisation and labels (`model.read_prompt`, collate_fn_train's rules) for a model with READ's
    prompt format, `<image>` wrapped in `<im_start>`/`<im_end>` when the checkpoint uses them, then each image
    placeholder expanded to `num_image_tokens` copies of the model's image row (labels -100)."""
    text = prompt
    if tokenizer.use_im_start_end and IM_START_TOKEN not in text:
        text = expand_image_tokens(text)
    read_ids = tokenizer.encode(text)
    read_labels = tokenizer.labels(text, read_ids)
    image_id = int(tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))
    ids: list[int] = []
    labels: list[int] = []
    for token, label in zip(read_ids, read_labels):
        if token == tokenizer.image_token_index:
            ids += [image_id] * num_image_tokens
            labels += [IGNORE_INDEX] * num_image_tokens
        else:
            ids.append(int(token))
            labels.append(int(label))
    return _truncate(ids, labels, seg_id=tokenizer.seg_token_id, image_id=image_id, max_length=max_length)


def _truncate(ids: list[int], labels: list[int], *, seg_id: int, image_id: int, max_length: int | None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, labels) as tensors, cut to `max_length` unless that would drop an image token or a [SEG]."""
    if max_length is not None and len(ids) > max_length:
        cut = ids[max_length:]
        if seg_id in cut or image_id in cut:
            raise ValueError(
                f"prompt is {len(ids)} tokens; truncating to data max_length={max_length} would drop "
                f"{cut.count(seg_id)} [SEG] and {cut.count(image_id)} image tokens; raise max_length"
            )
        ids, labels = ids[:max_length], labels[:max_length]
    return torch.tensor(ids, dtype=torch.long), torch.tensor(labels, dtype=torch.long)


def seg_spacing(tokenizer: Any) -> str:
    """The tokenizer's `SEG_SPACING_KEY` setting: "strip" or "keep" (absent)."""
    return str((getattr(tokenizer, "init_kwargs", None) or {}).get(SEG_SPACING_KEY, "keep"))


def _encode_text(text: str, tokenizer: Any, seg_id: int, *, strip: bool) -> list[int]:
    """Ids of a text piece without special tokens; with `strip`, the spaces right before each [SEG] are dropped
    and the pieces between [SEG]s are encoded on their own (READ's slow tokenizer does the same around added
    tokens: "is [SEG]." -> `▁is`, `[SEG]`, `▁.`)."""
    if not strip or SEG_TOKEN not in text:
        return tokenizer.encode(text, add_special_tokens=False)
    out: list[int] = []
    parts = text.split(SEG_TOKEN)
    for k, part in enumerate(parts):
        if k < len(parts) - 1:
            part = part.rstrip(" ")
        if part:
            out += tokenizer.encode(part, add_special_tokens=False)
        if k < len(parts) - 1:
            out.append(seg_id)
    return out


def _single_token_id(tokenizer: Any, token: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise ValueError(f"tokenizer has no {token!r} token; add it (the model's build_read tokenizer does)")
    return int(token_id)


def left_pad(ids: list[torch.Tensor], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad 1-D id tensors to one batch, so every sequence ends at the last position (the next token's logits
    are then `[:, -1]` for all): input_ids (N, T) long, attention_mask (N, T) long (0 on padding)."""
    length = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), length), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(ids), length), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, length - len(x):] = x
        attention_mask[i, length - len(x):] = 1
    return input_ids, attention_mask
