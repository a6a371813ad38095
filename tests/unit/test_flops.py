"""bench.flops: the FLOP count of a READ update, checked against parameter counts of the real preset's modules
(built on the meta device) and against hand arithmetic."""

from __future__ import annotations

import pytest
import torch

from bench.flops import (TransformerShape, forward_flops, gpu_kind_of, mfu, read_update_flops,
                         sam_encoder_forward_flops)
from model.build import build_read
from model.config import ReadModelConfig

LLAMA_7B = TransformerShape(layers=32, width=4096, intermediate=11008, gated_mlp=True)
CLIP_L = TransformerShape(layers=24, width=1024, intermediate=4096, gated_mlp=False)


def linear_weights(module: torch.nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, torch.nn.Linear))


@pytest.fixture(scope="module")
def read7b():
    model, _ = build_read(ReadModelConfig(preset="read-7b"), device="meta")
    return model


def test_matmul_params_equal_the_real_modules(read7b):
    llm = read7b.llava.model.language_model
    assert LLAMA_7B.matmul_params() == linear_weights(llm.layers) == 6_476_005_376
    clip = read7b.llava.model.vision_tower
    assert CLIP_L.matmul_params() == linear_weights(clip)  # CLIP's layers only hold its matmuls
    sam_blocks = read7b.sam.image_encoder.blocks
    per_block = 4 * 1280 * 1280 + 2 * 1280 * 4 * 1280
    assert linear_weights(sam_blocks) == 32 * per_block


def test_hand_arithmetic():
    one = TransformerShape(layers=1, width=4, intermediate=8, gated_mlp=False)
    # 4*4*4 (q,k,v,o) + 2*4*8 (mlp) = 128 weights; 3 tokens -> 2*128*3 = 768, attention 4*1*4*9 = 144
    assert forward_flops(one, [3]) == 768 + 144
    flops = read_update_flops(llm=one, vocab=10, conversation_lengths=[3], clip=one, clip_tokens=3, images=2,
                              sam_flops_per_image=100.0)
    assert flops["llm"] == 3 * (2 * (128 + 40) * 3 + 144)
    assert flops["clip"] == 2 * (768 + 144) and flops["sam"] == 200.0
    assert flops["total"] == flops["llm"] + flops["clip"] + flops["sam"]


def test_the_issue_figure_and_mfu():
    """The issue's estimate: 13,200 tokens per update through the 6.7B LLM is ~0.53 PFLOP (6 x N x T); at 4.22 s
    per update on an H200 that is ~13% MFU. Our count adds the LM head, attention, CLIP and SAM's encoder."""
    lengths = [660] * 20
    flops = read_update_flops(llm=LLAMA_7B, vocab=32064, conversation_lengths=lengths, clip=CLIP_L, clip_tokens=577,
                              images=20, sam_flops_per_image=sam_encoder_forward_flops(embed_dim=1280, depth=32,
                                                                                     global_layers=4))
    six_nt = 6 * 6.74e9 * 13_200
    assert flops["llm"] == pytest.approx(six_nt, rel=0.1)
    # SAM ViT-H: ~2.9 T multiply-adds per 1024x1024 image (MobileSAM's table: 2.97 T), i.e. ~5.8 TFLOP
    assert 5.0e12 < flops["sam"] / 20 < 6.5e12
    assert mfu(six_nt, 4.22, gpu_kind="H200") == pytest.approx(0.128, abs=0.005)
    assert mfu(flops["total"], 4.22, gpu_kind="H200") > mfu(six_nt, 4.22, gpu_kind="H200")
    assert gpu_kind_of("NVIDIA H100 80GB HBM3") == "H100" and gpu_kind_of("Tesla T4") == ""
    with pytest.raises(ValueError, match="gpu_kind"):
        mfu(1.0, 1.0, gpu_kind="T4")
