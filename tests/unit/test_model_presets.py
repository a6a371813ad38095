"""Presets: tiny size/speed, real-size parameter counts on the meta device, no hard-coded resolutions."""

import time

import pytest
import torch

from model.build import build_read, count_parameters
from model.config import ReadModelConfig, SaspConfig, TinyConfig
from model.prompt_format import PromptFormat
from model.projector import SegPromptProjector
from tests.fixtures.model import make_inputs


def test_tiny_builds_fast_and_small():
    build_read(ReadModelConfig())  # warm caches (tokenizer merges, lazy imports)
    start = time.perf_counter()
    model, tokenizer = build_read(ReadModelConfig())
    assert time.perf_counter() - start < 1.0
    assert 300_000 < count_parameters(model) < 5_000_000
    assert (model.clip_image_size, model.num_image_tokens, model.sam_image_size) == (112, 64, 256)
    assert len(tokenizer) == model.llava.get_input_embeddings().weight.shape[0] < 1000


@pytest.mark.parametrize(
    ("preset", "llava_b", "llm_hidden"), [("read-7b", 7.06, 4096), ("read-13b", 13.35, 5120)]
)
def test_real_presets_on_meta_device(preset, llava_b, llm_hidden):
    model, _ = build_read(ReadModelConfig(preset=preset, dtype="bfloat16"), device="meta")
    assert next(model.parameters()).device.type == "meta"
    assert count_parameters(model.llava) / 1e9 == pytest.approx(llava_b, abs=0.02)
    assert count_parameters(model.sam) / 1e6 == pytest.approx(641.1, abs=0.5)  # SAM ViT-H
    assert count_parameters(model.projector) == llm_hidden * llm_hidden + llm_hidden + llm_hidden * 256 + 256
    assert (model.clip_image_size, model.num_image_tokens, model.sam_image_size) == (336, 576, 1024)
    assert model.llava.model.language_model.layers[0].self_attn.q_proj.weight.dtype == torch.bfloat16


def test_resolutions_follow_the_config(tiny_model):
    model, tokenizer = build_read(ReadModelConfig(tiny=TinyConfig(clip_image_size=168, sam_image_size=128,
                                                                  llm_hidden_size=64, llm_num_layers=1,
                                                                  clip_hidden_size=32, clip_num_layers=3)))
    assert (model.num_image_tokens, model.sam_image_size) == (144, 128)
    vision = model.llava.config.vision_config
    assert (vision.hidden_size, vision.intermediate_size, vision.num_hidden_layers) == (32, 64, 3)
    inputs = make_inputs(model, tokenizer, answers=["It is [SEG]."], image_index=[0], sizes=[(20, 70)])
    out = model(**inputs)
    assert out.similarity[0].shape == (1, 144) and out.mask_logits[0].shape == (1, 20, 70)
    assert torch.isfinite(out.loss)


def test_config_validation_names_the_key():
    with pytest.raises(ValueError, match="model.seg_hidden_position"):
        ReadModelConfig(seg_hidden_position="after")
    with pytest.raises(ValueError, match="model.tiny.sam_image_size"):
        ReadModelConfig(tiny=TinyConfig(sam_image_size=100))
    with pytest.raises(ValueError, match="model.dtype"):
        ReadModelConfig(dtype="float16")
    with pytest.raises(ValueError, match="prompt_format.answer_style"):
        PromptFormat(answer_style="loud")
    with pytest.raises(ValueError, match="model.sasp.t_neg/t_pos"):
        ReadModelConfig(sasp=SaspConfig(t_pos=0.1, t_neg=0.2))
    with pytest.raises(ValueError, match=r"model.tiny.clip_num_layers=4: model.tiny.\* overrides apply only to "
                                         r"preset=tiny, not 'read-7b'"):
        ReadModelConfig(preset="read-7b", tiny=TinyConfig(clip_num_layers=4))
    with pytest.raises(ValueError, match="model.tiny.projector_init_gain"):
        ReadModelConfig(tiny=TinyConfig(projector_init_gain=0.0))
    with pytest.raises(ValueError, match="model.tiny.clip_num_layers"):
        ReadModelConfig(tiny=TinyConfig(clip_num_layers=-1))
    with pytest.raises(ValueError, match="model.tiny.llm_init_std"):
        ReadModelConfig(tiny=TinyConfig(llm_init_std=-0.1))
    with pytest.raises(ValueError, match="model.tiny.clip_hidden_size must be a multiple of 2 heads"):
        build_read(ReadModelConfig(tiny=TinyConfig(clip_hidden_size=33)))


def test_projector_init_gain_scales_only_the_last_layer():
    torch.manual_seed(3)
    base = SegPromptProjector(llm_dim=16, prompt_dim=8)
    torch.manual_seed(3)
    loud = SegPromptProjector(llm_dim=16, prompt_dim=8, init_gain=10.0)
    assert torch.equal(loud.fc1.weight, base.fc1.weight)
    torch.testing.assert_close(loud.fc2.weight, 10.0 * base.fc2.weight)
    torch.testing.assert_close(loud.fc2.bias, 10.0 * base.fc2.bias)
    x = torch.randn(4, 16)
    torch.testing.assert_close(loud(x), 10.0 * base(x))
    torch.manual_seed(3)
    model, _ = build_read(ReadModelConfig(tiny=TinyConfig(projector_init_gain=10.0)))
    torch.manual_seed(3)
    plain, _ = build_read(ReadModelConfig())
    torch.testing.assert_close(model.projector.fc2.weight, 10.0 * plain.projector.fc2.weight)


def test_llm_init_std_redraws_only_the_decoder_linears():
    torch.manual_seed(5)
    plain, _ = build_read(ReadModelConfig())
    torch.manual_seed(5)
    wide, _ = build_read(ReadModelConfig(tiny=TinyConfig(llm_init_std=0.08)))
    lm_plain, lm_wide = plain.llava.model.language_model, wide.llava.model.language_model
    for name, module in lm_wide.layers.named_modules():
        if isinstance(module, torch.nn.Linear):
            assert module.weight.std().item() == pytest.approx(0.08, rel=0.1), name
            assert lm_plain.layers.get_submodule(name).weight.std().item() == pytest.approx(0.02, rel=0.1), name
    assert torch.equal(lm_wide.embed_tokens.weight, lm_plain.embed_tokens.weight)
    assert torch.equal(wide.llava.lm_head.weight, plain.llava.lm_head.weight)
    assert torch.equal(lm_wide.layers[0].input_layernorm.weight, lm_plain.layers[0].input_layernorm.weight)
