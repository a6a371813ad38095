"""What the warm start asks of READ beyond READ's own jobs, built on READ's public primitives (`READ.hidden_states`,
`READ.seg_similarity`, `READ.embed_inputs`): the [SEG] maps alone (no SAM) and greedy text for a batch of prompts.

Legend: I images, C conversations, T tokens, D LLM width, P image tokens per image, N [SEG] tokens, G generated tokens,
V vocabulary.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache

from model.read import READ


def similarity_from_states(model: READ, hidden_CTD: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """The [SEG] similarity maps of `model.hidden_states`' output: (N, P) float32, [SEG]s in batch order."""
    return model.seg_similarity(hidden_CTD, input_ids)[2].float()


def similarity_maps(model: READ, **inputs: torch.Tensor) -> torch.Tensor:
    """The [SEG] similarity maps alone (no SAM), with gradients: (N, P) float32, [SEG]s in batch order.

    `inputs` are `READ.hidden_states`' keyword arguments. This is the map SasP turns into points; a LLaVA whose map
    already points at the queried object (as LLaVA-1.5's does for READ) is what `demo.language` pretrains the tiny
    preset towards.
    """
    return similarity_from_states(model, model.hidden_states(**inputs), inputs["input_ids"])


@torch.no_grad()
def greedy_token_ids(
    model: READ,
    *,
    clip_images: torch.Tensor,
    image_index: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    stop_ids: tuple[int, ...] = (),
) -> torch.Tensor:
    """Greedy text only, for a left-padded batch of prompts, with a KV cache: (C, G) generated ids, G <=
    `max_new_tokens`; a row stops after `</s>` or one of `stop_ids` and is padded with `</s>` from there. The
    `<image>` placeholder is never generated, as in `READ.generate`.

    Args:
        clip_images: (I, 3, c, c). image_index: (C,) image of each prompt. input_ids, attention_mask: (C, T)
            prompts with `<image>` expanded, left-padded (mask 0 on the padding).
    """
    lm = model.llava.model.language_model
    eos = model.tokenizer.eos_token_id
    stops = torch.tensor([eos, *stop_ids], device=input_ids.device)
    cache = DynamicCache(config=lm.config)
    inputs_CTD = model.embed_inputs(clip_images=clip_images, image_index=image_index, input_ids=input_ids)
    hidden_CD = lm(inputs_embeds=inputs_CTD, attention_mask=attention_mask, past_key_values=cache,
                   use_cache=True).last_hidden_state[:, -1]
    done_C = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    generated = []
    for _ in range(max_new_tokens):
        logits_CV = model.llava.lm_head(hidden_CD)
        logits_CV[:, model.image_token_id] = float("-inf")
        next_C = logits_CV.argmax(-1).masked_fill(done_C, eos)
        generated.append(next_C)
        done_C |= torch.isin(next_C, stops)
        if bool(done_C.all()) or len(generated) == max_new_tokens:
            break
        attention_mask = torch.cat([attention_mask, torch.ones_like(attention_mask[:, :1])], 1)
        hidden_CD = lm(inputs_embeds=lm.get_input_embeddings()(next_C[:, None]), attention_mask=attention_mask,
                       past_key_values=cache, use_cache=True).last_hidden_state[:, -1]
    return torch.stack(generated, 1)
