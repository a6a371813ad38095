"""One model, many requests: image -> READ (teacher-forced or generating) -> masks, points and a result row.

Legend: T tokens the LLM sees (image expanded), N [SEG] tokens, P similarity cells, K SasP points, G generated ids,
H x W the original (EXIF-upright) image size.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from model.build import build_read
from model.prompt_format import PromptFormat
from pipelines import storage
from pipelines.data.image import decode_rgb, model_image
from pipelines.predict.config import PredictConfig
from pipelines.predict.prompts import prompt_ids, prompt_text
from pipelines.predict.requests import PredictRequest


@dataclass
class Prediction:
    """What one request produced. `trace` holds the arrays of `traces/<id>.npz`; `error` is "" when it ran."""

    request: PredictRequest
    prompt: str = ""
    generated_text: str = ""
    mask_HW: np.ndarray | None = None
    rgb_HW3: np.ndarray | None = None
    trace: dict[str, np.ndarray] = field(default_factory=dict)
    latency_ms: float = 0.0
    error: str = ""


def load_predict_model(cfg: PredictConfig, *, device: str = "cpu") -> tuple[Any, Any]:
    """(READ, tokenizer) for `cfg.checkpoint` (a release folder or our export; `build_read` tells them apart), or
    `cfg.model` as configured when no checkpoint is given."""
    model_cfg = cfg.model
    if cfg.checkpoint:
        if not storage.exists(cfg.checkpoint):
            raise ValueError(f"checkpoint={cfg.checkpoint!r} does not exist")
        model_cfg = dataclasses.replace(model_cfg, read_checkpoint=cfg.checkpoint)
    model, tokenizer = build_read(model_cfg, device=device)
    return model.eval(), tokenizer


class Predictor:
    """Runs requests through one loaded model.

    Args:
        model: a `model.read.READ` (eval mode). tokenizer: its tokenizer (`ReadPromptFormat` for release folders).
        max_new_tokens: generation budget. device: where the model lives.
        prompt_format: how the model was trained to talk (`model.prompt_format`; default READ's): the answer style
            and conversation template of prompts built from a query, and the image-token count.
    """

    def __init__(self, model: Any, tokenizer: Any, *, max_new_tokens: int = 512,
                 device: str | torch.device = "cpu", prompt_format: PromptFormat | None = None) -> None:
        self.model, self.tokenizer = model.eval(), tokenizer
        self.prompt_format = prompt_format or PromptFormat()
        self.num_image_tokens = self.prompt_format.num_image_tokens(int(model.num_image_tokens))
        self.max_new_tokens = max_new_tokens
        self.device = torch.device(device)
        self.dtype = next(model.parameters()).dtype

    def prompt_length(self, request: PredictRequest) -> int:
        """Tokens of the request's prompt with its image expanded (0 when the prompt cannot be built)."""
        try:
            text = prompt_text(request, self.tokenizer, self.prompt_format)
            return len(prompt_ids(text, self.tokenizer, self.num_image_tokens))
        except ValueError:
            return 0

    def predict_group(self, requests: list[PredictRequest], *, pad_generation: bool) -> list[Prediction]:
        """Predict `requests`; with `pad_generation`, the generate-mode requests of one image are left-padded with
        the pad token to the longest of them, padding attended (READ's test script), else each runs on its own."""
        pads = {r.request_id: 0 for r in requests}
        if pad_generation:
            groups: dict[str, list[PredictRequest]] = {}
            for r in requests:
                if r.mode == "generate":
                    groups.setdefault(r.image, []).append(r)
            for group in groups.values():
                lengths = {r.request_id: self.prompt_length(r) for r in group}
                longest = max(lengths.values())
                pads.update({rid: longest - n for rid, n in lengths.items() if n})
        return [self.predict(r, left_pad=pads[r.request_id]) for r in requests]

    def predict(self, request: PredictRequest, *, left_pad: int = 0) -> Prediction:
        """Run one request (`left_pad` pad tokens before its prompt, attended); an unreadable image or a bad prompt
        gives a Prediction with `error` set."""
        started = time.perf_counter()
        try:
            rgb_HW3 = decode_rgb(storage.read_bytes(request.image))
        except (OSError, ValueError) as err:
            return Prediction(request=request, error=f"image {request.image}: {err}")
        try:
            text = prompt_text(request, self.tokenizer, self.prompt_format)
            ids_T = prompt_ids(text, self.tokenizer, self.num_image_tokens)
            if left_pad:
                ids_T = torch.cat([ids_T.new_full((left_pad,), int(self.tokenizer.pad_token_id)), ids_T])
            out = self._run(request.mode, rgb_HW3, ids_T)
        except ValueError as err:
            return Prediction(request=request, rgb_HW3=rgb_HW3, error=f"request {request.request_id}: {err}")
        pred = Prediction(request=request, prompt=text, rgb_HW3=rgb_HW3, generated_text=out.pop("text", ""))
        logits_NHW = out["mask_logits"]
        pred.mask_HW = (logits_NHW[0] > 0) if len(logits_NHW) else np.zeros(rgb_HW3.shape[:2], dtype=bool)
        pred.trace = out
        pred.latency_ms = (time.perf_counter() - started) * 1000.0
        return pred

    @torch.no_grad()
    def _run(self, mode: str, rgb_HW3: np.ndarray, ids_T: torch.Tensor) -> dict[str, Any]:
        """Trace arrays (see PredictConfig.trace) and, in generate mode, the text."""
        model = self.model
        image = model_image(rgb_HW3, clip_size=model.clip_image_size, sam_size=model.sam_image_size,
                            device=self.device, dtype=self.dtype)
        clip_3CC, sam_3SS, resized, original = image["clip"], image["sam"], image["resized"], image["original"]
        ids_1T = ids_T[None].to(self.device)
        trace: dict[str, Any] = {}
        if mode == "generate":
            gen = model.generate(clip_image=clip_3CC, sam_image=sam_3SS, resized_size=resized,
                                 original_size=original, input_ids=ids_1T, max_new_tokens=self.max_new_tokens)
            eos = [self.tokenizer.eos_token_id] if gen.ended else []
            all_ids = ids_T.tolist() + gen.token_ids
            trace["generated_ids"] = np.asarray(gen.token_ids + eos, dtype=np.int64)
            trace["text"] = gen.text.strip()
            masks, sims, points, labels = gen.mask_logits, gen.similarity, gen.points, gen.point_labels
        else:
            seg = model.segment(clip_images=clip_3CC[None], sam_images=sam_3SS[None], resized_sizes=[resized],
                                original_sizes=[original], image_index=torch.zeros(1, dtype=torch.long,
                                                                                     device=self.device),
                                input_ids=ids_1T, attention_mask=torch.ones_like(ids_1T))
            all_ids = ids_T.tolist()
            masks, sims, points, labels = seg.mask_logits[0], seg.similarity[0], seg.points[0], seg.point_labels[0]
        shift = 1 if model.cfg.seg_hidden_position == "before" else 0
        trace["input_ids"] = ids_T.cpu().numpy().astype(np.int64)
        trace["seg_positions"] = np.asarray([i - shift for i, t in enumerate(all_ids) if t == model.seg_token_id],
                                            dtype=np.int64)
        trace["similarity"] = sims.detach().float().cpu().numpy()
        trace["points"] = points.detach().float().cpu().numpy()
        trace["point_labels"] = labels.detach().cpu().numpy().astype(np.int64)
        trace["mask_logits"] = masks.detach().float().cpu().numpy()
        return trace
