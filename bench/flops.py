"""Model FLOPs of one READ training update and MFU (model FLOPs utilisation), written down once.

Convention (PaLM appendix B, as torchtitan and litgpt report MFU): matmul FLOPs only, 2 per multiply-add; a training
step of a weight matrix costs 3x its forward (forward, input gradient, weight gradient) whether or not the weight is
frozen (LoRA), so the count does not depend on the fine-tuning policy; attention scores and values add
4 x context x width per token and layer in the forward pass. Element-wise work (norms, activations, softmax) is not
counted. Per update of READ:

    LLM   3 x [2 x N_llm x T + 4 x L x d x sum_c(T_c^2 / 2 ... causal, counted as T_c^2 (no masking saving))]
          with N_llm = decoder weights + lm_head (embeddings are lookups), T = all tokens of all conversations
    CLIP  forward only (frozen, no_grad): 2 x N_clip x (P + 1) + 4 x L_clip x d_clip x (P + 1)^2 per image
    SAM   image encoder forward only (frozen): 2 x N_enc x (S/16)^2 + windowed / global attention per image;
          prompt encoder and mask decoder are negligible (< 0.1%) and not counted

MFU = model FLOPs / (seconds per update x peak dense bf16 FLOP/s of the GPUs).

Legend: N parameters of matmuls, T tokens, L layers, d width, P image tokens, S SAM input side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PEAK_BF16_FLOPS = {
    "H100": 989e12,  # H100 SXM dense bf16
    "H200": 989e12,  # same tensor cores as H100 SXM
    "A100": 312e12,
}
"""Peak dense (no sparsity) bf16 tensor-core FLOP/s per GPU kind, from the vendor data sheets."""


@dataclass(frozen=True, kw_only=True)
class TransformerShape:
    """What the FLOP count needs from one transformer stack."""

    layers: int
    width: int
    intermediate: int
    gated_mlp: bool
    """LLaMA's SwiGLU MLP has three matrices (gate, up, down); CLIP's and SAM's have two."""
    kv_width: int = 0
    """Width of K and V (grouped-query attention); 0: equal to `width`."""

    def matmul_params(self) -> int:
        """Weights of the matrices of one stack (no embeddings, biases or norms)."""
        kv = self.kv_width or self.width
        attention = 2 * self.width * self.width + 2 * self.width * kv
        mlp = (3 if self.gated_mlp else 2) * self.width * self.intermediate
        return self.layers * (attention + mlp)


def forward_flops(shape: TransformerShape, sequence_lengths: Sequence[int], *, extra_params: int = 0) -> float:
    """Forward matmul FLOPs of sequences of the given lengths through one stack (plus `extra_params` more matmul
    weights per token, e.g. an LM head): 2 x params x tokens + 4 x L x d x T^2 per sequence."""
    tokens = sum(sequence_lengths)
    dense = 2.0 * (shape.matmul_params() + extra_params) * tokens
    attention = 4.0 * shape.layers * shape.width * sum(t * t for t in sequence_lengths)
    return dense + attention


def sam_encoder_forward_flops(*, embed_dim: int, depth: int, global_layers: int, image_size: int = 1024,
                              window: int = 14, patch: int = 16) -> float:
    """SAM ViT image-encoder forward FLOPs for one image: patch embedding, blocks (MLP ratio 4), windowed attention
    (windows padded to multiples of `window`), `global_layers` global-attention blocks, and the neck's two convs
    (256 channels, 1x1 then 3x3)."""
    grid = image_size // patch
    tokens = grid * grid
    if window <= 0:  # every block global
        window, global_layers = grid, depth
    padded = -(-grid // window) * window
    windows = (padded // window) ** 2
    per_block = 2.0 * (4 * embed_dim * embed_dim + 2 * embed_dim * 4 * embed_dim) * tokens
    windowed = 4.0 * embed_dim * windows * (window * window) ** 2
    global_attention = 4.0 * embed_dim * tokens * tokens
    patch_embed = 2.0 * (3 * patch * patch) * embed_dim * tokens
    neck = 2.0 * (embed_dim * 256 + 256 * 256 * 9) * tokens
    return (patch_embed + depth * per_block + (depth - global_layers) * windowed + global_layers * global_attention
            + neck)


def read_update_flops(*, llm: TransformerShape, vocab: int, conversation_lengths: Sequence[int], clip: TransformerShape,
                      clip_tokens: int, images: int, sam_flops_per_image: float) -> dict[str, float]:
    """Model FLOPs of one READ update: {"llm", "clip", "sam", "total"} (see the module docstring)."""
    llm_flops = 3.0 * forward_flops(llm, conversation_lengths, extra_params=llm.width * vocab)
    clip_flops = images * forward_flops(clip, [clip_tokens])
    sam_flops = images * sam_flops_per_image
    return {"llm": llm_flops, "clip": clip_flops, "sam": sam_flops, "total": llm_flops + clip_flops + sam_flops}


def mfu(flops_per_update: float, seconds_per_update: float, *, gpus: int = 1, gpu_kind: str = "H100") -> float:
    """Model FLOPs utilisation in [0, 1] of `gpus` GPUs of `gpu_kind` (a key of PEAK_BF16_FLOPS)."""
    if gpu_kind not in PEAK_BF16_FLOPS:
        raise ValueError(f"gpu_kind must be one of {sorted(PEAK_BF16_FLOPS)}, got {gpu_kind!r}")
    return flops_per_update / (seconds_per_update * gpus * PEAK_BF16_FLOPS[gpu_kind])


def gpu_kind_of(device_name: str) -> str:
    """The PEAK_BF16_FLOPS key of a CUDA device name ("NVIDIA H100 80GB HBM3" -> "H100"); "" when unknown."""
    return next((kind for kind in PEAK_BF16_FLOPS if kind in device_name), "")


def read_model_flops(model, conversation_lengths: Sequence[int], images: int) -> dict[str, float]:
    """`read_update_flops` with the shapes read off a `model.read.READ` (real or on the meta device)."""
    text = model.llava.config.text_config
    vision = model.llava.config.vision_config
    heads, kv_heads = text.num_attention_heads, getattr(text, "num_key_value_heads", None) or text.num_attention_heads
    llm = TransformerShape(layers=text.num_hidden_layers, width=text.hidden_size,
                           intermediate=text.intermediate_size, gated_mlp=True,
                           kv_width=text.hidden_size * kv_heads // heads)
    clip = TransformerShape(layers=vision.num_hidden_layers, width=vision.hidden_size,
                            intermediate=vision.intermediate_size, gated_mlp=False)
    encoder = model.sam.image_encoder
    blocks = encoder.blocks
    sam = sam_encoder_forward_flops(embed_dim=encoder.patch_embed.proj.out_channels, depth=len(blocks),
                                    global_layers=sum(b.window_size == 0 for b in blocks),
                                    image_size=encoder.img_size, window=max(b.window_size for b in blocks))
    clip_tokens = (vision.image_size // vision.patch_size) ** 2 + 1
    return read_update_flops(llm=llm, vocab=model.llava.lm_head.out_features, conversation_lengths=conversation_lengths,
                             clip=clip, clip_tokens=clip_tokens, images=images, sam_flops_per_image=sam)


class CountingStream:
    """Wraps a TrainBatch iterator and records, per batch, the conversations' token counts and the images."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.batches: list[tuple[list[int], int]] = []

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self.stream)
        self.batches.append((batch.attention_mask_CT.sum(1).tolist(), len(batch.original_sizes)))
        return batch
