"""Scoring shard samples with a READ model: one result row per query.

Two modes (docs/metrics.md):
    teacher_forced  ReasonSeg, RefCOCO family: the protocol's prompt whose answer holds one [SEG]; the queries of
                    one image go through one `READ.segment` call (chunks of `max_queries_per_forward`).
    generate        FP-RefCOCO, R-RefCOCO: the protocol's question, greedy decoding; the queries of one image are
                    decoded together (`READ.generate_batch`, chunks of `max_queries_per_forward`), or one at a time
                    with READ's padding under protocol=read; the prediction is the first generated [SEG]'s mask,
                    zeros when no [SEG] was generated.
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

from model.read_prompt import TEMPLATES, ReadPromptFormat
from model.prompt_format import PromptFormat
from pipelines.data.image import decode_rgb, model_image
from pipelines.evaluate.metrics import GENERATE, TEACHER_FORCED
from pipelines.evaluate.protocol import EvalProtocol, ProtocolPrompt, load_protocol, protocol_prompts, scored_queries
from pipelines.data.tokenize import left_pad
from pipelines.predict.prompts import prompt_ids
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
        protocol: which queries are scored and their prompts (`pipelines.evaluate.protocol`); default clean.
        prompt_format: how the model was trained to answer (the checkpoint's prompt_format.json); default plain.
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
        protocol: EvalProtocol | None = None,
        prompt_format: PromptFormat | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.run = run
        self.mode_of = mode_of
        self.protocol = protocol or load_protocol("clean")
        self.prompt_format = prompt_format or PromptFormat()
        self.num_image_tokens = self.prompt_format.num_image_tokens(int(model.num_image_tokens))
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
            queries = scored_queries(self.protocol, item)
            if self.mode_of(item.dataset) == GENERATE:
                return self._generate_all(item, shard, queries, image)
            prompts = protocol_prompts(self.protocol, item, queries, generate=False,
                                       answer_style=self.prompt_format.answer_style)
            rows = []
            step = self.max_queries_per_forward
            for start in range(0, len(prompts), step):
                rows += self._teacher_forced(item, shard, prompts[start : start + step], image)
            return rows
        except ValueError as err:  # e.g. a query the tokenizer cannot take: recorded, never dropped
            return [self._error(shard, item.key, item.dataset, item.split, f"sample {item.key}: {err}")]

    def _error(self, shard: str, key: str, dataset: str, split: str, reason: str) -> dict[str, Any]:
        return error_row(run=self.run, shard=shard, sample_key=key, dataset=dataset, split=split, error=reason,
                         protocol=self.protocol.name)

    def _prepare_image(self, rgb_HW3: np.ndarray) -> dict[str, Any]:
        started = time.perf_counter()
        image = model_image(rgb_HW3, clip_size=self.model.clip_image_size, sam_size=self.model.sam_image_size,
                            device=self.device, dtype=self.dtype)
        return image | {"ms": (time.perf_counter() - started) * 1000.0}

    def _prompt(self, p: ProtocolPrompt, *, generate: bool) -> str:
        """The conversation text of one query in the checkpoint's format (READ layout: `<im_start>` wrapping)."""
        system = self.protocol.system(generate=generate, model_conversation=self.prompt_format.conversation)
        if isinstance(self.tokenizer, ReadPromptFormat):
            return self.tokenizer.build_prompt(system, [(p.question, p.answer)])
        return TEMPLATES[system].render([(p.question, p.answer)])

    def _ids(self, text: str) -> torch.Tensor:
        return prompt_ids(text, self.tokenizer, self.num_image_tokens)

    @torch.no_grad()
    def _teacher_forced(
        self, sample: ShardSample, shard: str, prompts: list[ProtocolPrompt], image: dict[str, Any]
    ) -> list[dict[str, Any]]:
        started = time.perf_counter()
        texts = [self._prompt(p, generate=False) for p in prompts]
        ids = [self._ids(t) for t in texts]
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
        latency = ((time.perf_counter() - started) * 1000.0 + image["ms"]) / len(prompts)
        rows = []
        for c, p in enumerate(prompts):
            rows.append(
                query_row(
                    run=self.run, sample=sample, shard=shard, query=p.query, mode=TEACHER_FORCED,
                    protocol=self.protocol.name, prompt=texts[c], template_id=p.template_id,
                    pred_HW=_first_mask(out.mask_logits[c]),
                    similarity_P=_first(out.similarity[c]),
                    points_K2=_first(out.points[c]),
                    point_labels_K=_first(out.point_labels[c]),
                    latency_ms=latency,
                )
            )
        return rows

    def _generate_all(self, sample: ShardSample, shard: str, queries: list[Query], image: dict[str, Any]
                      ) -> list[dict[str, Any]]:
        """Generation rows for an image's queries, one at a time; with the protocol's `read` padding each prompt is
        first left-padded with the pad token to the image's longest (READ's collate_fn_test)."""
        prompts = protocol_prompts(self.protocol, sample, queries, generate=True,
                                   answer_style=self.prompt_format.answer_style)
        texts = [self._prompt(p, generate=True) for p in prompts]
        ids = [self._ids(t) for t in texts]
        if self.protocol.generation_padding == "read" and ids:
            ids = list(left_pad(ids, self.pad_id)[0])  # READ attends the padding: the mask is not used
            return [self._generate(sample, shard, p, t, x, image) for p, t, x in zip(prompts, texts, ids)]
        rows = []
        step = self.max_queries_per_forward
        for start in range(0, len(prompts), step):
            chunk = slice(start, start + step)
            rows += self._generate_batch(sample, shard, prompts[chunk], texts[chunk], ids[chunk], image)
        return rows

    @torch.no_grad()
    def _generate_batch(self, sample: ShardSample, shard: str, prompts: list[ProtocolPrompt], texts: list[str],
                        ids: list[torch.Tensor], image: dict[str, Any]) -> list[dict[str, Any]]:
        """Generation rows of queries of one image decoded together (`READ.generate_batch`: left padding masked,
        KV cache, stop per row; the same tokens and masks as one at a time)."""
        started = time.perf_counter()
        input_ids, mask = left_pad(ids, self.pad_id)
        outs = self.model.generate_batch(
            clip_images=image["clip"][None], sam_images=image["sam"][None], resized_sizes=[image["resized"]],
            original_sizes=[image["original"]], image_index=torch.zeros(len(ids), dtype=torch.long,
                                                                        device=self.device),
            input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
            max_new_tokens=self.max_new_tokens,
        )
        latency = ((time.perf_counter() - started) * 1000.0 + image["ms"]) / len(ids)
        return [self._generation_row(sample, shard, p, t, out, image, latency)
                for p, t, out in zip(prompts, texts, outs)]

    @torch.no_grad()
    def _generate(self, sample: ShardSample, shard: str, p: ProtocolPrompt, text: str, ids_T: torch.Tensor,
                  image: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        out = self.model.generate(
            clip_image=image["clip"],
            sam_image=image["sam"],
            resized_size=image["resized"],
            original_size=image["original"],
            input_ids=ids_T[None].to(self.device),
            max_new_tokens=self.max_new_tokens,
        )
        latency = (time.perf_counter() - started) * 1000.0 + image["ms"]
        return self._generation_row(sample, shard, p, text, out, image, latency)

    def _generation_row(self, sample: ShardSample, shard: str, p: ProtocolPrompt, text: str, out: Any,
                        image: dict[str, Any], latency: float) -> dict[str, Any]:
        if out.mask_logits.shape[0] == 0:
            pred_HW = np.zeros(image["original"], dtype=bool)
        else:
            pred_HW = _first_mask(out.mask_logits)
        return query_row(
            run=self.run, sample=sample, shard=shard, query=p.query, mode=GENERATE, pred_HW=pred_HW,
            protocol=self.protocol.name, prompt=text, template_id=p.template_id,
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
