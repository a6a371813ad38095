"""The per-sample training transform: ShardSample -> Example (conversations, tokens, CLIP/SAM images, masks)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch

from model.prompt_format import PromptFormat
from pipelines.data.collate import Example
from pipelines.data.conversation import build_conversations
from pipelines.data.image import clip_preprocess, decode_rgb, mask_target, sam_preprocess
from pipelines.data.premises import PremisePolicy
from pipelines.data.templates import SEG_TOKEN
from pipelines.data.tokenize import tokenize
from schemas.sample import ShardSample


@dataclass(frozen=True, kw_only=True)
class ModelInputSpec:
    """What the loader needs to know about the model: taken from a built READ with `from_model`."""

    num_image_tokens: int
    """P: copies of the image token id that replace `<image>` (576 for CLIP-336)."""
    clip_image_size: int
    """CLIP input side (336 for the real presets)."""
    sam_image_size: int
    """SAM input side (1024 for the real presets)."""
    answer_style: str = "plain"
    """How true short queries are answered (model.prompt_format.ANSWER_STYLES): the prompt format's."""
    conversation: str = "llava_v1"
    """The conversation template prompts are written in (model.read_prompt.TEMPLATES): the prompt format's."""

    def __post_init__(self) -> None:
        for name in ("num_image_tokens", "clip_image_size", "sam_image_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ModelInputSpec.{name} must be > 0, got {getattr(self, name)}")

    @classmethod
    def from_model(cls, model: Any, prompt_format: PromptFormat | None = None) -> "ModelInputSpec":
        """The sizes of a `model.read.READ` and the conversation layout of `prompt_format` (default: READ's).

        Raises:
            ValueError: `prompt_format.image_tokens` is set and differs from the model's image-token count.
        """
        fmt = prompt_format or PromptFormat()
        return cls(
            num_image_tokens=fmt.num_image_tokens(int(model.num_image_tokens)),
            clip_image_size=int(model.clip_image_size),
            sam_image_size=int(model.sam_image_size),
            answer_style=fmt.answer_style,
            conversation=fmt.conversation,
        )


class SampleTransform:
    """ShardSample -> Example. A module-level callable class so it pickles into DataLoader workers.

    Raises ValueError (naming the sample key) on any data problem; the stream counts and skips such samples.
    """

    def __init__(self, *, tokenizer: Any, spec: ModelInputSpec, num_classes_per_sample: int = 1,
                 max_length: int | None = None, premises: PremisePolicy = PremisePolicy()) -> None:
        self.tokenizer = tokenizer
        self.spec = spec
        self.num_classes_per_sample = num_classes_per_sample
        self.premises = premises
        self.max_length = max_length
        self.seg_id = int(tokenizer.convert_tokens_to_ids(SEG_TOKEN))

    def __call__(self, sample: ShardSample, rng: random.Random) -> Example:
        where = f"sample {sample.key} (dataset {sample.dataset}, source {sample.source})"
        rgb = decode_rgb(sample.image_bytes)
        if rgb.shape[:2] != (sample.height, sample.width):
            raise ValueError(f"{where}: image is {rgb.shape[1]}x{rgb.shape[0]} but metadata says "
                             f"{sample.width}x{sample.height}")
        sam_image, resized = sam_preprocess(rgb, self.spec.sam_image_size)
        convs = build_conversations(sample, rng=rng, num_classes_per_sample=self.num_classes_per_sample,
                                    answer_style=self.spec.answer_style, conversation=self.spec.conversation,
                                    premises=self.premises)
        ids_list, labels_list, masks_list = [], [], []
        for conv in convs:
            prompt = conv.prompt
            try:
                ids, labels = tokenize(prompt, self.tokenizer, self.spec.num_image_tokens, max_length=self.max_length)
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from err
            num_seg = int((ids == self.seg_id).sum())
            if num_seg != len(conv.masks):
                raise ValueError(f"{where}: conversation {conv.query_ids} has {num_seg} [SEG] tokens but "
                                 f"{len(conv.masks)} masks")
            if conv.masks:
                masks = torch.stack([mask_target(m) for m in conv.masks])
            else:
                masks = torch.zeros((0, sample.height, sample.width), dtype=torch.float32)
            ids_list.append(ids)
            labels_list.append(labels)
            masks_list.append(masks)
        return Example(
            key=sample.key,
            clip_image_3CC=clip_preprocess(rgb, self.spec.clip_image_size),
            sam_image_3SS=sam_image,
            resized_size=resized,
            original_size=(sample.height, sample.width),
            input_ids=ids_list,
            labels=labels_list,
            masks=masks_list,
            query_ids=[c.query_ids for c in convs],
            meta=[{**c.meta, "kind": c.kind} for c in convs],
        )
