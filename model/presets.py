"""Architecture presets: `tiny` (tests and the CPU demo) and the real READ-7B / READ-13B shapes.

The real presets describe LLaVA-1.5 7B/13B (Vicuna/LLaMA + CLIP ViT-L/14-336 + 2-layer GELU projector, llava-hf
vocabulary of 32064 rows) and SAM ViT-H. No size is hard-coded elsewhere: CLIP crop, patch grid (SasP) and SAM input
all follow the preset.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

from model.config import ReadModelConfig
from model.sam import SAM_VIT_H, SamShape


@dataclass(kw_only=True, frozen=True)
class LlavaShape:
    """The LLaVA hyper-parameters a preset fixes."""

    clip_image_size: int
    """CLIP input side (336 for CLIP-L/14-336)."""
    clip_patch_size: int
    """CLIP patch side (14)."""
    clip_hidden_size: int
    """CLIP width."""
    clip_intermediate_size: int
    """CLIP MLP width."""
    clip_num_layers: int
    """CLIP blocks (features come from the second-to-last)."""
    clip_num_heads: int
    """CLIP heads."""
    llm_hidden_size: int
    """LLM width."""
    llm_intermediate_size: int
    """LLM MLP width."""
    llm_num_layers: int
    """LLM decoder layers."""
    llm_num_heads: int
    """LLM attention heads."""
    vocab_size: int
    """Embedding rows (random-init builds; a loaded LLaVA brings its own)."""


LLAVA_SHAPES = {
    "tiny": LlavaShape(
        clip_image_size=112, clip_patch_size=14, clip_hidden_size=64, clip_intermediate_size=128, clip_num_layers=2,
        clip_num_heads=2, llm_hidden_size=128, llm_intermediate_size=256, llm_num_layers=2, llm_num_heads=4,
        vocab_size=0,  # the tiny tokenizer's size
    ),
    "read-7b": LlavaShape(
        clip_image_size=336, clip_patch_size=14, clip_hidden_size=1024, clip_intermediate_size=4096,
        clip_num_layers=24, clip_num_heads=16, llm_hidden_size=4096, llm_intermediate_size=11008,
        llm_num_layers=32, llm_num_heads=32, vocab_size=32064,
    ),
    "read-13b": LlavaShape(
        clip_image_size=336, clip_patch_size=14, clip_hidden_size=1024, clip_intermediate_size=4096,
        clip_num_layers=24, clip_num_heads=16, llm_hidden_size=5120, llm_intermediate_size=13824,
        llm_num_layers=40, llm_num_heads=40, vocab_size=32064,
    ),
}

SAM_SHAPES = {
    "tiny": SamShape(
        image_size=256, encoder_embed_dim=32, encoder_depth=1, encoder_num_heads=2, encoder_global_attn_indexes=(0,),
        window_size=4, prompt_dim=64, decoder_mlp_dim=128, decoder_num_heads=4, iou_head_hidden_dim=64,
    ),
    "read-7b": SAM_VIT_H,
    "read-13b": SAM_VIT_H,
}


def sam_shape(cfg: ReadModelConfig) -> SamShape:
    """The preset's SAM shape with the `sam_image_size` override applied."""
    shape = SAM_SHAPES[cfg.preset]
    if cfg.tiny.sam_image_size:
        shape = SamShape.from_dict({**shape.to_dict(), "image_size": cfg.tiny.sam_image_size})
    return shape


def llava_config(cfg: ReadModelConfig, *, vocab_size: int, image_token_id: int, pad_token_id: int) -> LlavaConfig:
    """A LlavaConfig for a random-init build of `cfg.preset` (with the tiny-size overrides applied)."""
    s = LLAVA_SHAPES[cfg.preset]
    clip_size = cfg.tiny.clip_image_size or s.clip_image_size
    if clip_size % s.clip_patch_size:
        raise ValueError(f"model.tiny.clip_image_size must be a multiple of {s.clip_patch_size}, got {clip_size}")
    hidden = cfg.tiny.llm_hidden_size or s.llm_hidden_size
    if hidden % s.llm_num_heads:
        raise ValueError(f"model.tiny.llm_hidden_size must be a multiple of {s.llm_num_heads} heads, got {hidden}")
    intermediate = s.llm_intermediate_size if not cfg.tiny.llm_hidden_size else 2 * hidden
    clip_hidden = cfg.tiny.clip_hidden_size or s.clip_hidden_size
    if clip_hidden % s.clip_num_heads:
        raise ValueError(f"model.tiny.clip_hidden_size must be a multiple of {s.clip_num_heads} heads, got "
                         f"{clip_hidden}")
    vision = CLIPVisionConfig(
        hidden_size=clip_hidden,
        intermediate_size=s.clip_intermediate_size if not cfg.tiny.clip_hidden_size else 2 * clip_hidden,
        num_hidden_layers=cfg.tiny.clip_num_layers or s.clip_num_layers, num_attention_heads=s.clip_num_heads,
        image_size=clip_size, patch_size=s.clip_patch_size,
        projection_dim=768 if cfg.preset != "tiny" else clip_hidden,
    )
    text = LlamaConfig(
        vocab_size=max(vocab_size, s.vocab_size), hidden_size=hidden, intermediate_size=intermediate,
        num_hidden_layers=cfg.tiny.llm_num_layers or s.llm_num_layers, num_attention_heads=s.llm_num_heads,
        num_key_value_heads=s.llm_num_heads, max_position_embeddings=4096, rms_norm_eps=1e-5,
        pad_token_id=pad_token_id, tie_word_embeddings=False,
    )
    num_patches = (clip_size // s.clip_patch_size) ** 2
    return LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=image_token_id, image_seq_length=num_patches,
        projector_hidden_act="gelu", vision_feature_select_strategy="default", vision_feature_layer=-2,
        pad_token_id=pad_token_id,
    )
