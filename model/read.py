"""READ: LLaVA (transformers) + SAM (segment_anything.modeling) + [SEG] projector + SasP point prompts.

Legend: I images, C conversations (each on one image, `image_index`), T tokens, D LLM width, P image tokens per
image (side*side CLIP patches), N [SEG] tokens in the batch, K SasP points, E SAM prompt dim, h x w SAM embedding grid,
H x W an original image size, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers.cache_utils import DynamicCache

from model.config import ReadModelConfig
from model.losses import mask_losses, next_token_ce
from model.projector import SegPromptProjector
from model.sam import decode_masks, embed_points
from model.sasp import similarity_to_points, to_sam_frame
from model.sasp_read import read_similarity_to_points
from model.shared_prefix import plan_shared_prefix


@dataclass
class SegmentOutput:
    """Per conversation: mask logits (N_c, H, W), similarity (N_c, P), points (N_c, K, 2) (x, y) original px,
    point labels (N_c, K) in {1, 0, -1}."""

    mask_logits: list[torch.Tensor]
    similarity: list[torch.Tensor]
    points: list[torch.Tensor]
    point_labels: list[torch.Tensor]


@dataclass
class ReadOutput(SegmentOutput):
    """Training output: `losses` holds every objective unweighted under a name ending in "_loss" ("ce_loss",
    "bce_loss", "dice_loss"); `loss` = sum over them of `cfg.<name>_weight` x term (`READ.weighted_loss`)."""

    loss: torch.Tensor
    losses: dict[str, torch.Tensor]

    def __getattr__(self, name: str) -> torch.Tensor:  # out.ce_loss == out.losses["ce_loss"]
        losses = self.__dict__.get("losses", {})
        if name in losses:
            return losses[name]
        raise AttributeError(name)


@dataclass
class GenerateOutput:
    """Greedy generation for one image/prompt. N = number of generated [SEG] tokens (0: no mask).

    `token_ids` are the generated ids without the final `</s>`; `text` their decoding (keeps `[SEG]`); `ended` is
    True when `</s>` was generated (False: the budget ran out).
    """

    token_ids: list[int]
    text: str
    mask_logits: torch.Tensor  # (N, H, W)
    similarity: torch.Tensor  # (N, P)
    points: torch.Tensor  # (N, K, 2)
    point_labels: torch.Tensor  # (N, K)
    ended: bool = True


class READ(nn.Module):
    """The READ model. Sub-modules are injected by `model.build`; no weights are loaded here.

    Args:
        cfg: the model config (SasP, [SEG] position and loss settings are read from it at every call).
        llava: a `transformers.LlavaForConditionalGeneration`.
        sam: a `segment_anything.modeling.Sam` (only its encoder, prompt encoder and decoder are called).
        projector: the [SEG] prompt projector (LLM width -> SAM prompt dim).
        tokenizer: used by `generate` to decode text.
        seg_token_id / image_token_id: ids of `[SEG]` and `<image>`.
    """

    def __init__(
        self,
        *,
        cfg: ReadModelConfig,
        llava: nn.Module,
        sam: nn.Module,
        projector: SegPromptProjector,
        tokenizer: Any,
        seg_token_id: int,
        image_token_id: int,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.llava = llava
        self.sam = sam
        self.projector = projector
        self.tokenizer = tokenizer
        self.seg_token_id = int(seg_token_id)
        self.image_token_id = int(image_token_id)
        vision = llava.config.vision_config
        self.clip_image_size = int(vision.image_size)
        self.num_image_tokens = (vision.image_size // vision.patch_size) ** 2
        self.sam_image_size = int(sam.image_encoder.img_size)
        self.image_row_is_placeholder = tokenizer is not None and self.image_token_id >= len(tokenizer)
        """True when the image row is an extra row after the tokenizer's vocabulary (READ release folders: READ's
        prompts carry an out-of-vocabulary placeholder id); its logit is then masked in the training loss."""

    # ------------------------------------------------------------------ public API
    def forward(
        self,
        *,
        clip_images: torch.Tensor,
        sam_images: torch.Tensor,
        resized_sizes: list[tuple[int, int]],
        original_sizes: list[tuple[int, int]],
        image_index: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        gt_masks: list[torch.Tensor],
    ) -> ReadOutput:
        """Teacher-forced training step.

        Args:
            clip_images: (I, 3, c, c) CLIP-normalised crops. sam_images: (I, 3, s, s) SAM-normalised, padded.
            resized_sizes / original_sizes: per image (h', w') inside the SAM frame / (H, W).
            image_index: (C,) long, the image of each conversation.
            input_ids / attention_mask / labels: (C, T); `<image>` expanded to P tokens; labels -100 off answers.
            gt_masks: per conversation (N_c, H, W) float {0, 1}; N_c must equal the conversation's [SEG] count.

        Returns:
            ReadOutput with 0-dim losses and per-conversation mask logits, similarity maps and SasP points.
        """
        if len(gt_masks) != input_ids.shape[0]:
            raise ValueError(f"READ.forward: {input_ids.shape[0]} conversations but {len(gt_masks)} gt mask tensors")
        seg_counts = (input_ids == self.seg_token_id).sum(1).tolist()
        for c, (n_seg, masks) in enumerate(zip(seg_counts, gt_masks)):
            if n_seg != masks.shape[0]:
                raise ValueError(
                    f"conversation {c} (image {int(image_index[c])}) has {n_seg} [SEG] tokens but {masks.shape[0]} "
                    "masks; every [SEG] needs exactly one mask (fix the sample's answer or its masks)"
                )
        hidden_CTD = self.hidden_states(clip_images=clip_images, image_index=image_index, input_ids=input_ids,
                                        attention_mask=attention_mask)
        logits_CTV = self.llava.lm_head(hidden_CTD)
        if self.image_row_is_placeholder:  # not a token of the vocabulary: keep it out of the softmax
            logits_CTV = logits_CTV.index_fill(-1, torch.tensor([self.image_token_id], device=logits_CTV.device),
                                               float("-inf"))
        seg = self._segment_from_hidden(
            hidden_CTD, input_ids, sam_images, resized_sizes, original_sizes, image_index
        )
        ce = next_token_ce(logits_CTV, labels)
        bce, dice = mask_losses(seg.mask_logits, [m.to(hidden_CTD.device) for m in gt_masks])
        bce, dice = bce.to(ce.device), dice.to(ce.device)
        losses = {"ce_loss": ce, "bce_loss": bce, "dice_loss": dice}
        return ReadOutput(
            loss=self.weighted_loss(losses), losses=losses, mask_logits=seg.mask_logits,
            similarity=seg.similarity, points=seg.points, point_labels=seg.point_labels,
        )

    def weighted_loss(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """Sum of `cfg.<name>_weight` x `losses[<name>_loss]`: a new objective is one term in `forward` and one
        `<name>_weight` field of ReadModelConfig (docs/extending.md)."""
        total = None
        for key, value in losses.items():
            weight = getattr(self.cfg, key.removesuffix("_loss") + "_weight", None)
            if weight is None:
                raise ValueError(f"READ: loss term {key!r} has no weight: add `{key.removesuffix('_loss')}_weight` "
                                 "to ReadModelConfig")
            total = weight * value if total is None else total + weight * value
        return total

    @torch.no_grad()
    def segment(
        self,
        *,
        clip_images: torch.Tensor,
        sam_images: torch.Tensor,
        resized_sizes: list[tuple[int, int]],
        original_sizes: list[tuple[int, int]],
        image_index: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
    ) -> SegmentOutput:
        """Teacher-forced inference: masks for the [SEG] tokens already present in `input_ids` (shapes as `forward`)."""
        hidden_CTD = self.hidden_states(clip_images=clip_images, image_index=image_index, input_ids=input_ids,
                                        attention_mask=attention_mask)
        return self._segment_from_hidden(hidden_CTD, input_ids, sam_images, resized_sizes, original_sizes, image_index)

    def hidden_states(
        self,
        *,
        clip_images: torch.Tensor,
        image_index: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Last-layer (post-norm) LLM hidden states, with gradients when enabled: (C, T, D), shapes as `forward`
        (`attention_mask` None: attend everywhere). The one LLM pass `forward`, `segment` and `generate` share:
        `llava.lm_head` of it gives the next-token logits, `seg_similarity` the [SEG] maps."""
        inputs_CTD = self.embed_inputs(clip_images=clip_images, image_index=image_index, input_ids=input_ids)
        out = self.llava.model.language_model(inputs_embeds=inputs_CTD, attention_mask=attention_mask, use_cache=False)
        return out.last_hidden_state

    def embed_inputs(
        self, *, clip_images: torch.Tensor, image_index: torch.Tensor, input_ids: torch.Tensor
    ) -> torch.Tensor:
        """The LLM's input embeddings: token embeddings with each conversation's P `<image>` tokens replaced by its
        image's CLIP features (through the LLaVA projector): (C, T, D). What `hidden_states` and the KV-cached
        decoding feed the LLM; raises ValueError when a conversation does not hold exactly P `<image>` tokens."""
        tower = self.llava.model.vision_tower
        feats = self.llava.model.get_image_features(pixel_values=clip_images.to(tower.dtype)).pooler_output
        feats_IPD = torch.stack(list(feats), 0)
        embeds_CTD = self.llava.model.language_model.get_input_embeddings()(input_ids)
        is_image_CT = input_ids == self.image_token_id
        counts = is_image_CT.sum(1).tolist()
        for c, n in enumerate(counts):
            if n != self.num_image_tokens:
                raise ValueError(
                    f"conversation {c} has {n} <image> tokens but the model expects {self.num_image_tokens} "
                    f"({self.clip_image_size}px CLIP crop): expand <image> with the model's num_image_tokens"
                )
        feats_CPD = feats_IPD[image_index.to(feats_IPD.device)].to(embeds_CTD.dtype)
        return embeds_CTD.masked_scatter(is_image_CT[..., None], feats_CPD)

    def seg_similarity(
        self, hidden_CTD: torch.Tensor, input_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The [SEG] states of `hidden_states`' output and their maps (SasP step 1), [SEG]s in batch order:
        conversation of each (N,), [SEG] hidden (N, D), similarity (N, P) (float32, or the model dtype under
        `numerics=read`).

        The [SEG] state is the token's own or the one before it (`cfg.seg_hidden_position`); the map is its dot
        product with each of the conversation's P image-token states: in float32 (exact numerics, differentiable),
        or as READ computes it (read numerics: element-wise products summed in the model dtype). `input_ids` may be
        one token longer than the states (`generate`: a final [SEG] that was never fed).
        """
        C, T, D = hidden_CTD.shape
        conv_N, pos_N = (input_ids == self.seg_token_id).nonzero(as_tuple=True)
        if self.cfg.seg_hidden_position == "before":
            pos_N = pos_N - 1
        seg_hidden_ND = hidden_CTD[conv_N, pos_N]
        image_hidden_CPD = hidden_CTD[input_ids[:, :T] == self.image_token_id].view(C, self.num_image_tokens, D)
        if self.cfg.numerics == "read":
            similarity_NP = (image_hidden_CPD[conv_N] * seg_hidden_ND[:, None]).sum(-1)
        else:
            similarity_NP = torch.einsum("nd,npd->np", seg_hidden_ND.float(), image_hidden_CPD[conv_N].float())
        return conv_N, seg_hidden_ND, similarity_NP

    @torch.no_grad()
    def generate(
        self,
        *,
        clip_image: torch.Tensor,
        sam_image: torch.Tensor,
        resized_size: tuple[int, int],
        original_size: tuple[int, int],
        input_ids: torch.Tensor,
        max_new_tokens: int = 32,
    ) -> GenerateOutput:
        """Greedy decoding from a prompt ending at "ASSISTANT:", then one mask per generated [SEG]. The `<image>`
        placeholder is never generated (an untrained model may favour it; it would count as an image position).

        Args:
            clip_image: (3, c, c). sam_image: (3, s, s). resized_size: (h', w'). original_size: (H, W).
            input_ids: (1, T) prompt with `<image>` expanded.
            max_new_tokens: generation budget; stops earlier at `</s>`.
        """
        if input_ids.dim() != 2 or input_ids.shape[0] != 1:
            raise ValueError(f"READ.generate: input_ids must be (1, T), got {tuple(input_ids.shape)}")
        image_index = torch.zeros(1, dtype=torch.long, device=input_ids.device)
        decode = self._greedy_reencoding if self.cfg.numerics == "read" else self._greedy_cached
        generated, ended, hidden_1TD = decode(clip_image, input_ids, max_new_tokens)
        generated_1G = torch.tensor([generated], dtype=input_ids.dtype, device=input_ids.device)
        all_ids_1T = torch.cat([input_ids, generated_1G], 1)
        seg = self._segment_from_hidden(
            hidden_1TD, all_ids_1T, sam_image[None], [tuple(resized_size)],
            [tuple(original_size)], image_index,
        )
        return GenerateOutput(
            token_ids=generated,
            text=self.tokenizer.decode(generated, skip_special_tokens=False),
            mask_logits=seg.mask_logits[0], similarity=seg.similarity[0], points=seg.points[0],
            point_labels=seg.point_labels[0], ended=ended,
        )

    @torch.no_grad()
    def generate_batch(
        self,
        *,
        clip_images: torch.Tensor,
        sam_images: torch.Tensor,
        resized_sizes: list[tuple[int, int]],
        original_sizes: list[tuple[int, int]],
        image_index: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        max_new_tokens: int = 32,
    ) -> list[GenerateOutput]:
        """`generate` for C prompts at once: greedy with a KV cache, left padding masked (position ids count real
        tokens only, so each row computes what it computes alone), the prefix an image's rows share prefilled once
        (`_prefill`), each row stopping at its own `</s>`; then SAM once per image for all its [SEG]s. With
        `cfg.numerics == "read"` the rows run one at a time through `generate` (READ re-encodes every step).

        Args:
            clip_images: (I, 3, c, c). sam_images: (I, 3, s, s). resized_sizes / original_sizes: per image.
            image_index: (C,) the image of each prompt. input_ids, attention_mask: (C, T) left-padded prompts with
                `<image>` expanded (mask 0 on the padding).

        Returns:
            one GenerateOutput per prompt, in order.
        """
        if self.cfg.numerics == "read":
            return [self.generate(clip_image=clip_images[int(i)], sam_image=sam_images[int(i)],
                                  resized_size=resized_sizes[int(i)], original_size=original_sizes[int(i)],
                                  input_ids=ids[mask.bool()][None], max_new_tokens=max_new_tokens)
                    for i, ids, mask in zip(image_index.tolist(), input_ids, attention_mask)]
        rows, ended, hidden_steps = self._greedy_batch(clip_images, image_index, input_ids, attention_mask,
                                                       max_new_tokens)
        hidden_CTD, all_ids_CT = self._unpad_rows(hidden_steps, input_ids, attention_mask, rows)
        seg = self._segment_from_hidden(hidden_CTD, all_ids_CT, sam_images, resized_sizes, original_sizes,
                                        image_index)
        return [GenerateOutput(token_ids=ids, text=self.tokenizer.decode(ids, skip_special_tokens=False),
                               mask_logits=seg.mask_logits[c], similarity=seg.similarity[c], points=seg.points[c],
                               point_labels=seg.point_labels[c], ended=ended[c])
                for c, ids in enumerate(rows)]

    def _greedy_batch(
        self, clip_images: torch.Tensor, image_index: torch.Tensor, input_ids: torch.Tensor,
        attention_mask: torch.Tensor, max_new_tokens: int,
    ) -> tuple[list[list[int]], list[bool], list[torch.Tensor]]:
        """Greedy decoding of left-padded rows with a KV cache: (generated ids per row without `</s>`, ended at
        `</s>` per row, the hidden states of every forward: [(C, T, D), (C, 1, D), ...])."""
        lm = self.llava.model.language_model
        embed = lm.get_input_embeddings()
        eos = self.tokenizer.eos_token_id
        cache = DynamicCache(config=lm.config)
        prompt_CTD, mask_CT, next_pos_C1 = self._prefill(cache, clip_images, image_index, input_ids, attention_mask)
        steps = [prompt_CTD]
        C = input_ids.shape[0]
        rows: list[list[int]] = [[] for _ in range(C)]
        ended = [False] * C
        done = [False] * C
        for step in range(max_new_tokens):
            logits_CV = self.llava.lm_head(steps[-1][:, -1])
            logits_CV[:, self.image_token_id] = float("-inf")
            next_C = logits_CV.argmax(-1)
            tokens = next_C.tolist()  # one device sync per step
            appended = [False] * C
            for c in range(C):
                if done[c]:
                    continue
                token = tokens[c]
                if token == eos:
                    done[c] = ended[c] = True
                else:
                    rows[c].append(token)
                    appended[c] = True
                    done[c] = len(rows[c]) == max_new_tokens
            if step == max_new_tokens - 1:  # the budget: the last tokens need a state only as a "token" [SEG]
                if self.cfg.seg_hidden_position != "token" or not any(
                        not ended[c] and rows[c] and rows[c][-1] == self.seg_token_id for c in range(C)):
                    break
            elif all(done):  # every row ended at </s>: its tokens all have their states
                break
            next_C = next_C.masked_fill(~torch.tensor(appended, device=next_C.device), eos)  # finished rows idle
            mask_CT = torch.cat([mask_CT, torch.ones_like(mask_CT[:, :1])], 1)
            out = lm(inputs_embeds=embed(next_C[:, None]), attention_mask=mask_CT, position_ids=next_pos_C1,
                     past_key_values=cache, use_cache=True)
            steps.append(out.last_hidden_state)
            next_pos_C1 = next_pos_C1 + 1
        return rows, ended, steps

    def _prefill(self, cache: DynamicCache, clip_images: torch.Tensor, image_index: torch.Tensor,
                 input_ids: torch.Tensor, attention_mask: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The left-padded prompts (C, T) through the LLM into `cache`: (their last-layer states (C, T, D), the
        attention mask over the cache (C, K), the position of each row's next token (C, 1)).

        When an image has several rows, their shared prefix (system text and image tokens) runs once per image and
        its cache is copied to the rows, which then prefill only their suffixes (`model.shared_prefix`); positions
        count real tokens only, so each row computes what it computes alone."""
        lm = self.llava.model.language_model
        plan = plan_shared_prefix(input_ids, attention_mask, image_index, image_token_id=self.image_token_id,
                                  pad_id=self._pad_id())
        if plan is None:
            mask_CT = attention_mask.long()
            position_CT = (mask_CT.cumsum(-1) - 1).clamp_min(0)
            inputs_CTD = self.embed_inputs(clip_images=clip_images, image_index=image_index, input_ids=input_ids)
            hidden_CTD = lm(inputs_embeds=inputs_CTD, attention_mask=mask_CT, position_ids=position_CT,
                            past_key_values=cache, use_cache=True).last_hidden_state
            return hidden_CTD, mask_CT, position_CT[:, -1:] + 1
        prefix_pos_GL = (plan.prefix_mask.cumsum(-1) - 1).clamp_min(0)
        inputs_GLD = self.embed_inputs(clip_images=clip_images, image_index=plan.group_image,
                                       input_ids=plan.prefix_ids)
        prefix_GLD = lm(inputs_embeds=inputs_GLD, attention_mask=plan.prefix_mask, position_ids=prefix_pos_GL,
                        past_key_values=cache, use_cache=True).last_hidden_state
        cache.batch_select_indices(plan.row_group)
        mask_CK = torch.cat([plan.prefix_mask[plan.row_group], plan.suffix_mask], 1)
        suffix_pos_CS = plan.prefix_len[plan.row_group, None] + (plan.suffix_mask.cumsum(-1) - 1).clamp_min(0)
        suffix_CSD = lm(inputs_embeds=lm.get_input_embeddings()(plan.suffix_ids), attention_mask=mask_CK,
                        position_ids=suffix_pos_CS, past_key_values=cache, use_cache=True).last_hidden_state
        return plan.prompt_states(prefix_GLD, suffix_CSD, attention_mask), mask_CK, suffix_pos_CS[:, -1:] + 1

    def _unpad_rows(self, steps: list[torch.Tensor], input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's real prompt + generated tokens and their states, right-padded into (C, T', D) / (C, T') (the
        padding ids are the pad token: never [SEG], never an image token)."""
        hidden_CSD = torch.cat(steps, 1)
        T = input_ids.shape[1]
        pad = self._pad_id()
        seqs, states = [], []
        for c, generated in enumerate(rows):
            keep = attention_mask[c].bool()
            prompt_ids = input_ids[c][keep]
            ids = torch.cat([prompt_ids, prompt_ids.new_tensor(generated)])
            hidden = torch.cat([hidden_CSD[c, :T][keep], hidden_CSD[c, T:T + len(generated)]])
            seqs.append(ids)
            states.append(hidden)
        length = max(len(x) for x in seqs)
        all_ids = input_ids.new_full((len(seqs), length), pad)
        hidden_out = hidden_CSD.new_zeros(len(seqs), length, hidden_CSD.shape[-1])
        for c, (ids, hidden) in enumerate(zip(seqs, states)):
            all_ids[c, : len(ids)] = ids
            hidden_out[c, : len(hidden)] = hidden
        return hidden_out, all_ids

    def _pad_id(self) -> int:
        """The id that pads rows: the tokenizer's pad token, else its eos."""
        pad = self.tokenizer.pad_token_id
        return int(self.tokenizer.eos_token_id if pad is None else pad)

    def _next_token(self, hidden_D: torch.Tensor) -> int:
        """Greedy next id from a last-position state; the `<image>` placeholder is never chosen."""
        logits_V = self.llava.lm_head(hidden_D)
        logits_V[self.image_token_id] = float("-inf")  # a placeholder, not text (generated: an image slot)
        return int(logits_V.argmax())

    def _greedy_cached(
        self, clip_image: torch.Tensor, input_ids: torch.Tensor, max_new_tokens: int
    ) -> tuple[list[int], bool, torch.Tensor]:
        """Greedy decoding with a KV cache (`_greedy_batch` on one row): (generated ids without `</s>`, ended at
        `</s>`, hidden (1, T', D)) where the hidden states cover the prompt and every generated token the [SEG]
        states need."""
        image_index = torch.zeros(1, dtype=torch.long, device=input_ids.device)
        rows, ended, steps = self._greedy_batch(clip_image[None], image_index, input_ids, torch.ones_like(input_ids),
                                                max_new_tokens)
        return rows[0], ended[0], torch.cat(steps, 1)

    def _greedy_reencoding(
        self, clip_image: torch.Tensor, input_ids: torch.Tensor, max_new_tokens: int
    ) -> tuple[list[int], bool, torch.Tensor]:
        """Greedy decoding as READ's released configs run it (`use_cache: false`): every step re-encodes the image
        and the whole sequence; the [SEG] states come from the last forward. Same returns as `_greedy_cached`."""
        clip_1 = clip_image[None]
        image_index = torch.zeros(1, dtype=torch.long, device=input_ids.device)
        ids_1T = input_ids
        generated: list[int] = []
        ended = False
        hidden_1TD = self.hidden_states(clip_images=clip_1, image_index=image_index, input_ids=ids_1T)
        for _ in range(max_new_tokens):
            next_id = self._next_token(hidden_1TD[0, -1])
            if next_id == self.tokenizer.eos_token_id:
                ended = True
                break
            generated.append(next_id)
            ids_1T = torch.cat([ids_1T, ids_1T.new_tensor([[next_id]])], 1)
            if len(generated) < max_new_tokens:
                hidden_1TD = self.hidden_states(clip_images=clip_1, image_index=image_index, input_ids=ids_1T)
        if generated and generated[-1] == self.seg_token_id and self.cfg.seg_hidden_position == "token":
            hidden_1TD = self.hidden_states(clip_images=clip_1, image_index=image_index, input_ids=ids_1T)
        return generated, ended, hidden_1TD

    def enable_gradient_checkpointing(self) -> None:
        """Activation checkpointing on the LLM decoder layers (non-reentrant, works with frozen embeddings)."""
        self.llava.model.language_model.activation_checkpointing_enable(
            activation_checkpointing_kwargs={"use_reentrant": False}
        )

    # ------------------------------------------------------------------ steps
    def _segment_from_hidden(
        self,
        hidden_CTD: torch.Tensor,
        input_ids: torch.Tensor,
        sam_images: torch.Tensor,
        resized_sizes: list[tuple[int, int]],
        original_sizes: list[tuple[int, int]],
        image_index: torch.Tensor,
    ) -> SegmentOutput:
        """[SEG] hidden -> projector + similarity -> SasP -> SAM, per conversation."""
        C = hidden_CTD.shape[0]
        conv_N, seg_hidden_ND, similarity_NP = self.seg_similarity(hidden_CTD, input_ids)
        image_N = image_index.to(conv_N.device)[conv_N].tolist()
        sizes_N = [tuple(original_sizes[i]) for i in image_N]
        to_points = read_similarity_to_points if self.cfg.numerics == "read" else similarity_to_points
        points_NK2, labels_NK = to_points(
            similarity_NP, sizes_N, **self.cfg.sasp.kwargs(), clip_size=self.clip_image_size,
        )
        similarity_NP = similarity_NP.float()
        prompt_NE = self.projector(seg_hidden_ND)
        masks_N = self._decode(prompt_NE, points_NK2, labels_NK, image_N, sam_images, resized_sizes, original_sizes)

        counts = torch.bincount(conv_N, minlength=C).tolist()
        out = SegmentOutput(mask_logits=[], similarity=[], points=[], point_labels=[])
        start = 0
        for c, n in enumerate(counts):
            H, W = original_sizes[int(image_index[c])]
            sl = slice(start, start + n)
            empty = hidden_CTD.new_zeros(0, H, W, dtype=torch.float32)
            out.mask_logits.append(torch.stack(masks_N[sl]) if n else empty)
            out.similarity.append(similarity_NP[sl])
            out.points.append(points_NK2[sl])
            out.point_labels.append(labels_NK[sl])
            start += n
        return out

    def _decode(
        self,
        prompt_NE: torch.Tensor,
        points_NK2: torch.Tensor,
        labels_NK: torch.Tensor,
        image_N: list[int],
        sam_images: torch.Tensor,
        resized_sizes: list[tuple[int, int]],
        original_sizes: list[tuple[int, int]],
    ) -> list[torch.Tensor]:
        """SAM decoding, one image-encoder pass per image that has a [SEG]: per [SEG] (H, W) float32 logits."""
        if not image_N:
            return []
        encoder = self.sam.image_encoder
        used = sorted(set(image_N))
        embeddings_IEhw = encoder(sam_images[used].to(encoder.patch_embed.proj.weight.dtype))
        points_sam_NK2 = to_sam_frame(points_NK2, [tuple(original_sizes[i]) for i in image_N], self.sam_image_size)
        read_numerics = self.cfg.numerics == "read"
        point_NQE = embed_points(self.sam.prompt_encoder, points_sam_NK2, labels_NK, read_numerics=read_numerics)
        sparse_NQE = torch.cat([point_NQE, prompt_NE[:, None].to(point_NQE.dtype)], dim=1)
        image_N_t = torch.tensor(image_N)
        masks: list[torch.Tensor | None] = [None] * len(image_N)
        for j, i in enumerate(used):
            idx = (image_N_t == i).nonzero(as_tuple=True)[0]
            logits = decode_masks(
                self.sam, embeddings_IEhw[j : j + 1], sparse_NQE[idx.to(sparse_NQE.device)],
                resized_size=tuple(resized_sizes[i]), original_size=tuple(original_sizes[i]),
                read_numerics=read_numerics,
            )
            for k, n in enumerate(idx.tolist()):
                masks[n] = logits[k]
        return masks
