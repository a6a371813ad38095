"""SAM from `segment_anything.modeling`: the ONE place that imports it, plus the few dtype-safe helpers READ needs.

Why the import is special: `import segment_anything.modeling` first executes `segment_anything/__init__.py`, which
imports the predictor and thus torchvision (not installed here, and not needed). So the `modeling` subpackage is loaded
directly from its file with importlib, registered under its real name `segment_anything.modeling` (so its relative
imports and pickled class paths are the usual ones) without ever executing the parent package's `__init__`. When the
subpackage is already imported (e.g. torchvision present and someone imported segment_anything), that module is reused.

We compose SAM's `image_encoder`, `prompt_encoder` and `mask_decoder` ourselves (`Sam.forward` is `no_grad`). Two
SAM functions are not dtype-safe once the model is cast to bfloat16 (they build float32 coordinate grids and multiply
them with the bf16 Gaussian matrix), so `dense_positional_encoding` and `embed_points` reimplement them following the
model dtype; `embed_points` also avoids in-place indexing so gradients flow from the SasP points.

References: segment-anything (Apache-2.0) `modeling/prompt_encoder.py`, `build_sam.py`, `utils/transforms.py`.

Legend: B prompts sets (one per [SEG]), K points, E prompt dim, h x w image-embedding grid, S SAM input side.
"""

from __future__ import annotations

import importlib.util
import math
import pathlib
import sys
from dataclasses import dataclass
from functools import partial
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import nn

_MODELING = "segment_anything.modeling"


def _load_modeling() -> ModuleType:
    if _MODELING in sys.modules:
        return sys.modules[_MODELING]
    top = importlib.util.find_spec("segment_anything")  # locating a top-level package does not execute it
    if top is None or not top.submodule_search_locations:
        raise ImportError("segment_anything is not installed: pip install segment-anything")
    folder = pathlib.Path(list(top.submodule_search_locations)[0]) / "modeling"
    spec = importlib.util.spec_from_file_location(
        _MODELING, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODELING] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_MODELING]
        raise
    return module


_modeling = _load_modeling()
Sam = _modeling.Sam
ImageEncoderViT = _modeling.ImageEncoderViT
PromptEncoder = _modeling.PromptEncoder
MaskDecoder = _modeling.MaskDecoder
TwoWayTransformer = _modeling.TwoWayTransformer

PATCH_SIZE = 16
"""SAM ViT patch size: the image embedding is (S/16) x (S/16)."""


@dataclass(kw_only=True, frozen=True)
class SamShape:
    """SAM architecture hyper-parameters (ViT-H values by default, as `build_sam_vit_h`)."""

    image_size: int = 1024
    """Square input side S (longest image side is resized to it)."""
    encoder_embed_dim: int = 1280
    """ViT width."""
    encoder_depth: int = 32
    """ViT blocks."""
    encoder_num_heads: int = 16
    """ViT attention heads."""
    encoder_global_attn_indexes: tuple[int, ...] = (7, 15, 23, 31)
    """Blocks with global (not windowed) attention."""
    window_size: int = 14
    """Window side of the windowed-attention blocks."""
    prompt_dim: int = 256
    """Prompt / image-embedding channels (the [SEG] projector outputs this)."""
    decoder_mlp_dim: int = 2048
    """Two-way transformer MLP width."""
    decoder_num_heads: int = 8
    """Two-way transformer heads."""
    iou_head_hidden_dim: int = 256
    """IoU head MLP width."""
    mask_in_chans: int = 16
    """Mask-prompt downscaling channels (unused by READ, kept for checkpoint compatibility)."""

    def __post_init__(self) -> None:
        if self.image_size % PATCH_SIZE:
            raise ValueError(f"SamShape.image_size must be a multiple of {PATCH_SIZE}, got {self.image_size}")

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "SamShape":
        d = dict(d)
        d["encoder_global_attn_indexes"] = tuple(d["encoder_global_attn_indexes"])
        return cls(**d)


SAM_VIT_H = SamShape()


def build_sam(shape: SamShape) -> nn.Module:
    """A randomly initialised `segment_anything.modeling.Sam` (state-dict layout of the official checkpoints)."""
    grid = shape.image_size // PATCH_SIZE
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=shape.encoder_depth,
            embed_dim=shape.encoder_embed_dim,
            img_size=shape.image_size,
            mlp_ratio=4,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            num_heads=shape.encoder_num_heads,
            patch_size=PATCH_SIZE,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=shape.encoder_global_attn_indexes,
            window_size=shape.window_size,
            out_chans=shape.prompt_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=shape.prompt_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(shape.image_size, shape.image_size),
            mask_in_chans=shape.mask_in_chans,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2,
                embedding_dim=shape.prompt_dim,
                mlp_dim=shape.decoder_mlp_dim,
                num_heads=shape.decoder_num_heads,
            ),
            transformer_dim=shape.prompt_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=shape.iou_head_hidden_dim,
        ),
    )


def _fourier(prompt_encoder: nn.Module, coords01: torch.Tensor, *, read_numerics: bool = False) -> torch.Tensor:
    """SAM's random-Fourier encoding of [0, 1] coordinates (..., 2) -> (..., E).

    Exact numerics: in float32 whatever the model dtype. READ numerics: `2c - 1` in the coordinates' dtype, then the
    projection, the 2*pi scaling and sin/cos in the dtype of the Gaussian matrix (bfloat16 in a bf16 model), as
    READ's patched `PositionEmbeddingRandom._pe_encoding` does.
    """
    gaussian = prompt_encoder.pe_layer.positional_encoding_gaussian_matrix  # (2, E/2)
    if read_numerics:
        proj = ((2 * coords01 - 1).to(gaussian.dtype) @ gaussian) * (2 * math.pi)
    else:
        proj = (2 * coords01.float() - 1) @ gaussian.float() * (2 * math.pi)
    return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


def dense_positional_encoding(prompt_encoder: nn.Module, dtype: torch.dtype, *, read_numerics: bool = False
                              ) -> torch.Tensor:
    """`prompt_encoder.get_dense_pe()` in `dtype`: (1, E, h, w). READ numerics build the pixel-centre grid in the
    Gaussian matrix's dtype (a cumulative sum of ones, as READ's SAM does) and encode it in that dtype."""
    h, w = prompt_encoder.image_embedding_size
    gaussian = prompt_encoder.pe_layer.positional_encoding_gaussian_matrix
    grid_dtype = gaussian.dtype if read_numerics else torch.float32
    ones_hw = torch.ones(h, w, device=gaussian.device, dtype=grid_dtype)
    ys = (ones_hw.cumsum(0) - 0.5) / h
    xs = (ones_hw.cumsum(1) - 0.5) / w
    grid_hw2 = torch.stack([xs, ys], dim=-1)  # (h, w, 2) as (x, y)
    return _fourier(prompt_encoder, grid_hw2, read_numerics=read_numerics).permute(2, 0, 1).unsqueeze(0).to(dtype)


def embed_points(
    prompt_encoder: nn.Module, points_BK2: torch.Tensor, labels_BK: torch.Tensor, *, read_numerics: bool = False
) -> torch.Tensor:
    """SAM's point embedding with its padding point (as `PromptEncoder.forward(points, boxes=None)`): (B, K+1, E).

    Args:
        points_BK2: (x, y) in SAM's resized-input frame (before the +0.5 pixel-centre shift).
        labels_BK: 1 positive, 0 negative, -1 not a point.
        read_numerics: encode as READ does (see `_fourier`): coordinates divided by the input size in float32.
    """
    B = points_BK2.shape[0]
    h_in, w_in = prompt_encoder.input_image_size
    pts = points_BK2.float() + 0.5
    pts = torch.cat([pts, pts.new_zeros(B, 1, 2)], dim=1)  # SAM pads one non-point when there is no box
    labels = torch.cat([labels_BK, labels_BK.new_full((B, 1), -1)], dim=1)[..., None]  # (B, K+1, 1)
    if read_numerics:
        pe = _fourier(prompt_encoder, pts / torch.tensor([w_in, h_in], device=pts.device), read_numerics=True)
    else:
        pe = _fourier(prompt_encoder, pts * torch.tensor([1.0 / w_in, 1.0 / h_in], device=pts.device))
    pe = pe.to(prompt_encoder.point_embeddings[0].weight.dtype)
    not_point = prompt_encoder.not_a_point_embed.weight.view(1, 1, -1)
    neg = prompt_encoder.point_embeddings[0].weight.view(1, 1, -1)
    pos = prompt_encoder.point_embeddings[1].weight.view(1, 1, -1)
    out = torch.where(labels == -1, not_point.expand_as(pe), pe)
    out = out + torch.where(labels == 0, neg, torch.zeros_like(neg))
    return out + torch.where(labels == 1, pos, torch.zeros_like(pos))


def decode_masks(
    sam: nn.Module,
    image_embedding_1Ehw: torch.Tensor,
    sparse_BQE: torch.Tensor,
    *,
    resized_size: tuple[int, int],
    original_size: tuple[int, int],
    read_numerics: bool = False,
) -> torch.Tensor:
    """Single-mask decoding for B prompt sets on one image, upsampled to the original size: (B, H, W) logits.

    Dense prompt = the no-mask embedding; low-res logits are upsampled to S, cropped to the unpadded (h', w'),
    then resized to (H, W) (SAM's `postprocess_masks`).
    """
    pe = sam.prompt_encoder
    dtype = image_embedding_1Ehw.dtype
    B = sparse_BQE.shape[0]
    h, w = pe.image_embedding_size
    dense_BEhw = pe.no_mask_embed.weight.to(dtype).reshape(1, -1, 1, 1).expand(B, -1, h, w)
    low_res_B1hw, _ = sam.mask_decoder(
        image_embeddings=image_embedding_1Ehw,
        image_pe=dense_positional_encoding(pe, dtype, read_numerics=read_numerics),
        sparse_prompt_embeddings=sparse_BQE.to(dtype),
        dense_prompt_embeddings=dense_BEhw,
        multimask_output=False,
    )
    side = sam.image_encoder.img_size
    masks = F.interpolate(low_res_B1hw.float(), (side, side), mode="bilinear", align_corners=False)
    masks = masks[..., : resized_size[0], : resized_size[1]]
    masks = F.interpolate(masks, tuple(original_size), mode="bilinear", align_corners=False)
    return masks[:, 0]
