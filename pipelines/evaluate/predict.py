"""Scoring shard samples with a READ model: one result row per query.

Two modes (shared/spec/metrics.md):
    teacher_forced  ReasonSeg, RefCOCO family: the fixed evaluation prompt whose answer holds one [SEG]; the
                    queries of one image go through one `READ.segment` call (chunks of `max_queries_per_forward`).
    generate        FP-RefCOCO, R-RefCOCO: the short question, greedy `READ.generate`; the prediction is the first
                    generated [SEG]'s mask, zeros when no [SEG] was generated.
The prediction is `logits > 0` at the original image size. A sample whose image cannot be decoded becomes an
error row.

Legend: C = conversations (queries) in one forward, T = tokens, H, W = original size, P = similarity cells, K = points.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from pipelines.data.conversation import eval_prompt
from pipelines.data.image import clip_preprocess, decode_rgb, sam_preprocess
from pipelines.data.tokenize import tokenize
from pipelines.evaluate.metrics import GENERATE, TEACHER_FORCED
from pipelines.evaluate.rows import RunInfo, error_row, query_row
from pipelines.evaluate.shards import BadSample
from schemas.sample import Query, ShardSample


class Evaluator:
    """Holds a READ model and its tokenizer; turns shard samples into result rows.

    Args:
        model: a `model.read.READ` in eval mode.
        tokenizer: its tokenizer ("<image>", "[SEG]", eos).
        run: run id and checkpoint written into every row.
        mode_of: dataset name -> "teacher_forced" | "generate".
        max_new_tokens: generation budget per query.
        max_queries_per_forward: teacher-forced chunk size.
        device: where the model lives.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        run: RunInfo,
        mode_of: Callable[[str], str],
        max_new_tokens: int = 32,
        max_queries_per_forward: int = 16,
        device: str | torch.device = "cpu",
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.run = run
        self.mode_of = mode_of
        self.max_new_tokens = max_new_tokens
        self.max_queries_per_forward = max_queries_per_forward
        self.device = torch.device(device)
        pad = tokenizer.pad_token_id
        self.pad_id = int(tokenizer.eos_token_id if pad is None else pad)
        self.dtype = next(model.parameters()).dtype

    def score(self, item: ShardSample | BadSample, shard: str) -> list[dict[str, Any]]:
        """Rows for one shard item: one per query, or one error row when it cannot be decoded or scored."""
        if isinstance(item, BadSample):
            return [self._error(shard, item.key, item.dataset, item.split, item.error)]
        try:
            rgb_HW3 = decode_rgb(item.image_bytes)
        except ValueError as err:
            return [self._error(shard, item.key, item.dataset, item.split, f"sample {item.key}: {err}")]
        if rgb_HW3.shape[:2] != (item.height, item.width):
            reason = f"sample {item.key}: image is {rgb_HW3.shape[:2]} but metadata says {(item.height, item.width)}"
            return [self._error(shard, item.key, item.dataset, item.split, reason)]
        if not item.queries:
            return []  # VQA samples have nothing to segment
        try:
            image = self._prepare_image(rgb_HW3)
            if self.mode_of(item.dataset) == GENERATE:
                return [self._generate(item, shard, q, image) for q in item.queries]
            rows = []
            step = self.max_queries_per_forward
            for start in range(0, len(item.queries), step):
                rows += self._teacher_forced(item, shard, item.queries[start : start + step], image)
            return rows
        except ValueError as err:  # e.g. a query the tokenizer cannot take: recorded, never dropped
            return [self._error(shard, item.key, item.dataset, item.split, f"sample {item.key}: {err}")]

    def _error(self, shard: str, key: str, dataset: str, split: str, reason: str) -> dict[str, Any]:
        return error_row(run=self.run, shard=shard, sample_key=key, dataset=dataset, split=split, error=reason)

    def _prepare_image(self, rgb_HW3: np.ndarray) -> dict[str, Any]:
        started = time.perf_counter()
        clip_3CC = clip_preprocess(rgb_HW3, self.model.clip_image_size)
        sam_3SS, resized = sam_preprocess(rgb_HW3, self.model.sam_image_size)
        return {
            "clip": clip_3CC.to(self.device, self.dtype),
            "sam": sam_3SS.to(self.device, self.dtype),
            "resized": resized,
            "original": (int(rgb_HW3.shape[0]), int(rgb_HW3.shape[1])),
            "ms": (time.perf_counter() - started) * 1000.0,
        }

    def _ids(self, query: Query, *, with_answer: bool) -> torch.Tensor:
        prompt = eval_prompt(query.text, is_sentence=query.is_sentence, with_answer=with_answer,
                             answer_style=self.model.cfg.answer_style)
        input_ids_T, _ = tokenize(prompt, self.tokenizer, self.model.num_image_tokens)
        return input_ids_T

    @torch.no_grad()
    def _teacher_forced(
        self, sample: ShardSample, shard: str, queries: list[Query], image: dict[str, Any]
    ) -> list[dict[str, Any]]:
        started = time.perf_counter()
        ids = [self._ids(q, with_answer=True) for q in queries]
        num_tokens = max(len(x) for x in ids)
        input_ids_CT = torch.full((len(ids), num_tokens), self.pad_id, dtype=torch.long)
        attention_mask_CT = torch.zeros((len(ids), num_tokens), dtype=torch.long)
        for c, x in enumerate(ids):  # right padding: real tokens keep their positions
            input_ids_CT[c, : len(x)] = x
            attention_mask_CT[c, : len(x)] = 1
        out = self.model.segment(
            clip_images=image["clip"][None],
            sam_images=image["sam"][None],
            resized_sizes=[image["resized"]],
            original_sizes=[image["original"]],
            image_index=torch.zeros(len(ids), dtype=torch.long, device=self.device),
            input_ids=input_ids_CT.to(self.device),
            attention_mask=attention_mask_CT.to(self.device),
        )
        latency = ((time.perf_counter() - started) * 1000.0 + image["ms"]) / len(queries)
        rows = []
        for c, query in enumerate(queries):
            rows.append(
                query_row(
                    run=self.run, sample=sample, shard=shard, query=query, mode=TEACHER_FORCED,
                    pred_HW=_first_mask(out.mask_logits[c]),
                    similarity_P=_first(out.similarity[c]),
                    points_K2=_first(out.points[c]),
                    point_labels_K=_first(out.point_labels[c]),
                    latency_ms=latency,
                )
            )
        return rows

    @torch.no_grad()
    def _generate(self, sample: ShardSample, shard: str, query: Query, image: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        input_ids_1T = self._ids(query, with_answer=False)[None].to(self.device)
        out = self.model.generate(
            clip_image=image["clip"],
            sam_image=image["sam"],
            resized_size=image["resized"],
            original_size=image["original"],
            input_ids=input_ids_1T,
            max_new_tokens=self.max_new_tokens,
        )
        latency = (time.perf_counter() - started) * 1000.0 + image["ms"]
        if out.mask_logits.shape[0] == 0:
            pred_HW = np.zeros(image["original"], dtype=bool)
        else:
            pred_HW = _first_mask(out.mask_logits)
        return query_row(
            run=self.run, sample=sample, shard=shard, query=query, mode=GENERATE, pred_HW=pred_HW,
            generated_text=out.text.strip(),
            similarity_P=_first(out.similarity),
            points_K2=_first(out.points),
            point_labels_K=_first(out.point_labels),
            latency_ms=latency,
        )


def _first_mask(logits_NHW: torch.Tensor) -> np.ndarray:
    """The first mask's foreground, logits > 0.  # (H, W) bool"""
    return (logits_NHW[0] > 0).cpu().numpy()


def _first(x_N: torch.Tensor | None) -> np.ndarray | None:
    """The first [SEG]'s entry as float/int numpy, None when there is none."""
    if x_N is None or x_N.shape[0] == 0:
        return None
    return x_N[0].detach().float().cpu().numpy()
