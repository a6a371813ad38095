"""Does the warm start already decide the way READ's FP-RefCOCO evaluation reads a decision?

The evaluation asks a question and decodes greedily; a false premise counts as refused when no `[SEG]` comes out
(docs: ../shared/spec/metrics.md, See). A low answer CE does not imply that: READ's corrections and denials are spread
over many templates while "I found {expr} [SEG]." and its siblings share their first words, so greedy decoding keeps
to the echo answers unless the LLM is confident the object is not there. This module decodes the held-out
conversations' questions greedily, as the evaluation does, and reports the decisions.

Legend: N conversations, T tokens (left-padded), V vocabulary.
"""

from __future__ import annotations

import numpy as np
import torch

from demo.language.pointing import PointingBatch
from demo.read_helpers import greedy_token_ids
from model.read import READ
from pipelines.data.tokenize import IGNORE_INDEX, left_pad


def question_prompts(batch: PointingBatch) -> list[torch.Tensor]:
    """Each conversation cut before its answer (ending at "ASSISTANT:", as the evaluation's prompt): N x (T_i,)."""
    prompts = []
    for ids_T, mask_T, labels_T in zip(batch.input_ids, batch.attention_mask, batch.labels):
        ids_T, labels_T = ids_T[mask_T.bool()], labels_T[mask_T.bool()]
        answer = (labels_T != IGNORE_INDEX).nonzero(as_tuple=True)[0]
        if len(answer) == 0:
            raise ValueError("a held-out conversation has no answer tokens; cannot cut its question")
        prompts.append(ids_T[: int(answer[0])])
    return prompts


def greedy_says_seg(model: READ, batch: PointingBatch, *, max_new_tokens: int = 24, chunk: int = 64) -> torch.Tensor:
    """Greedy answers to each conversation's question (`demo.read_helpers.greedy_token_ids`, `chunk` at a time): (N,)
    bool, True when `[SEG]` comes before `</s>` (within `max_new_tokens`)."""
    says = []
    for start in range(0, len(batch.types), chunk):
        part = batch.rows(start, start + chunk)
        input_ids, attention_mask = left_pad(question_prompts(part), model.tokenizer.pad_token_id)
        ids_NG = greedy_token_ids(model, clip_images=part.pixels, image_index=torch.arange(input_ids.shape[0]),
                                  input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
                                  stop_ids=(model.seg_token_id,))
        says.append((ids_NG == model.seg_token_id).any(1))
    return torch.cat(says)


def decision_metrics(says_seg: torch.Tensor, batch: PointingBatch) -> dict[str, float]:
    """answer_kept: share of true premises answered with [SEG]; answer_refused (and answer_refused_<edit>): share of
    false premises answered without; answer_see: their mean (See on a split half false premises, as FP-RefCOCO val).
    A held-out set without false premises reports answer_kept only."""
    says, exists = says_seg.numpy(), batch.exists.numpy()
    out = {"answer_kept": float(says[exists].mean())}
    if (~exists).any():
        refused, edits = ~says[~exists], np.array(batch.edits)[~exists]
        out["answer_refused"] = float(refused.mean())
        out["answer_see"] = (out["answer_kept"] + out["answer_refused"]) / 2
        out |= {f"answer_refused_{e}": float(refused[edits == e].mean()) for e in sorted(set(edits))}
    return out
