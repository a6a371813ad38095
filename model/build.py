"""Build READ from a preset and load weights: HF LLaVA-1.5 folders, SAM .pth, released LISA/SESAME/READ checkpoints
(original LLaVA naming, via `model.convert`) and our own exports (`model.export`). The only file I/O of `model/`.

`build_read(cfg)`:
  * tiny preset without `llava_path`: random init, the in-code tokenizer (no files).
  * real preset without `llava_path`: random init with the preset's shapes (for shape, memory and speed checks; the
    in-code tokenizer's ids fit in the 32064-row vocabulary). Use device="meta" to count parameters for free.
  * `llava_path`: LLaVA (+ tokenizer) from a Hugging Face folder (`[SEG]` is added and embeddings grown if
    needed), or LLaVA-1.5 in the original layout (config.json with `mm_vision_tower`, e.g. liuhaotian/llava-v1.5-7b;
    CLIP from `clip_path` or its `mm_vision_tower`) built as READ builds it (`model.read_release.load_llava_base`).
  * `sam_checkpoint`: SAM weights from a segment-anything `.pth`.
  * `tiny.vision_checkpoint`: vision-tower weights (`.safetensors`) over a random-init tiny tower.
  * `read_checkpoint`: our export folder (then everything comes from it); a READ / LISA / SESAME release folder as
    published (`model.read_release`: architecture, tokenizer and weights from the folder, CLIP from `clip_path` or
    its `mm_vision_tower`, no preset); or a released checkpoint file in the original naming, loaded on top of the
    built model (all keys must match).
"""

from __future__ import annotations

import pathlib

import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, LlavaForConditionalGeneration

from model.config import ReadModelConfig
from model.construct import construction
from model.convert import load_original_checkpoint
from model.export import is_export_dir, load_export, save_export
from model.presets import llava_config, sam_shape
from model.projector import SegPromptProjector
from model.read import READ
from model.read_release import NEW_ROW_STD, is_read_release_dir, load_llava_base, load_read_release
from model.sam import build_sam
from model.tokenizer import IMAGE, SEG, SEG_SPACING_KEY, build_tiny_tokenizer

__all__ = ["build_read", "save_export", "load_export", "load_sam_checkpoint", "load_vision_checkpoint",
           "count_parameters"]


def build_read(cfg: ReadModelConfig, *, device: str | torch.device = "cpu") -> tuple[READ, object]:
    """Build the READ model and its tokenizer as `cfg` says (see module docstring). Returns (model, tokenizer)."""
    if cfg.read_checkpoint and is_export_dir(cfg.read_checkpoint):
        model, tokenizer, _ = load_export(cfg.read_checkpoint, device=device, runtime_cfg=cfg)
        return model, tokenizer
    if cfg.read_checkpoint and is_read_release_dir(cfg.read_checkpoint):
        model = load_read_release(cfg.read_checkpoint, clip_path=cfg.clip_path, sam_arch=cfg.sam_arch,
                                  dtype=getattr(torch, cfg.dtype), cfg=cfg)
        return model.to(device=device), model.tokenizer
    dtype = getattr(torch, cfg.dtype)
    if cfg.llava_path and is_read_release_dir(cfg.llava_path):  # LLaVA-1.5 in the original layout
        model = load_llava_base(cfg.llava_path, sam_checkpoint=cfg.sam_checkpoint, clip_path=cfg.clip_path,
                                dtype=dtype, cfg=cfg)
        return model.to(device=device), model.tokenizer
    tokenizer, llava = _build_llava(cfg, device, dtype)
    shape = sam_shape(cfg)
    with construction(device, dtype):
        sam = build_sam(shape)
        projector = SegPromptProjector(llm_dim=llava.config.text_config.hidden_size, prompt_dim=shape.prompt_dim,
                                       init_gain=cfg.tiny.projector_init_gain)
    if cfg.sam_checkpoint:
        load_sam_checkpoint(sam, cfg.sam_checkpoint)
    if cfg.tiny.vision_checkpoint:
        load_vision_checkpoint(llava.model.vision_tower, cfg.tiny.vision_checkpoint)
    model = READ(
        cfg=cfg, llava=llava, sam=sam, projector=projector, tokenizer=tokenizer,
        seg_token_id=tokenizer.convert_tokens_to_ids(SEG), image_token_id=llava.config.image_token_id,
    )
    if cfg.read_checkpoint:
        load_original_checkpoint(model, cfg.read_checkpoint, original_seg_token_id=cfg.original_seg_token_id)
    return model.to(device=device, dtype=dtype), tokenizer


def _build_llava(cfg: ReadModelConfig, device, dtype: torch.dtype):
    if not cfg.llava_path:
        tokenizer = build_tiny_tokenizer()
        config = llava_config(
            cfg, vocab_size=len(tokenizer), image_token_id=tokenizer.convert_tokens_to_ids(IMAGE),
            pad_token_id=tokenizer.pad_token_id,
        )
        with construction(device, dtype):
            llava = LlavaForConditionalGeneration(config)
        if cfg.tiny.llm_init_std:
            _reinit_decoder_linears(llava.model.language_model, cfg.tiny.llm_init_std)
        return tokenizer, llava
    path = pathlib.Path(cfg.llava_path)
    if not (path / "config.json").is_file():
        raise ValueError(f"model.llava_path={cfg.llava_path!r} is not a Hugging Face LLaVA folder (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.convert_tokens_to_ids(IMAGE) in (None, tokenizer.unk_token_id):
        raise ValueError(f"model.llava_path={cfg.llava_path!r}: its tokenizer has no {IMAGE} token (not LLaVA-1.5 HF?)")
    had_seg = tokenizer.convert_tokens_to_ids(SEG) not in (None, tokenizer.unk_token_id)
    tokenizer.add_tokens([SEG])  # a normal added token, as LISA/SESAME/READ do; no-op when already present
    if not had_seg:  # a base never trained with [SEG]: its state is a word, not "▁" (saved with the tokenizer);
        tokenizer.init_kwargs.setdefault(SEG_SPACING_KEY, "strip")  # a folder that had [SEG] keeps its convention
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token
    llava = LlavaForConditionalGeneration.from_pretrained(str(path), dtype=dtype, device_map=str(device))
    if len(tokenizer) > llava.get_input_embeddings().weight.shape[0]:
        llava.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    if not had_seg:
        _init_added_rows(llava, tokenizer.convert_tokens_to_ids(SEG))
    return tokenizer, llava


@torch.no_grad()
def _init_added_rows(llava: LlavaForConditionalGeneration, token_id: int) -> None:
    """The embedding and lm_head rows of a token the base did not have (llava-hf's [SEG] row is one of its unused
    padding rows) drawn from N(0, 0.02) with the global torch RNG, as READ's `resize_token_embeddings` draws them;
    recorded in `llava.config.readseg_added_rows` (saved with exports)."""
    llava.get_input_embeddings().weight[token_id].normal_(0.0, NEW_ROW_STD)
    llava.get_output_embeddings().weight[token_id].normal_(0.0, NEW_ROW_STD)
    llava.config.readseg_added_rows = {SEG: {"id": int(token_id), "init": f"normal(0, {NEW_ROW_STD})"}}


@torch.no_grad()
def _reinit_decoder_linears(language_model: torch.nn.Module, std: float) -> None:
    """Draw every linear weight of the decoder layers (attention and MLP) from N(0, std); embeddings, norms and the
    LM head keep Hugging Face's initialisation."""
    for module in language_model.layers.modules():
        if isinstance(module, torch.nn.Linear):
            module.weight.normal_(0.0, std)


def load_sam_checkpoint(sam: torch.nn.Module, path: str) -> None:
    """Load a segment-anything state dict (`.pth`) into `sam`; missing/unexpected keys raise with their names."""
    _load_exactly(sam, torch.load(path, map_location="cpu", weights_only=True), key="model.sam_checkpoint",
                  path=path, what="SAM")


def load_vision_checkpoint(tower: torch.nn.Module, path: str) -> None:
    """Load a vision-tower state dict (`.safetensors`, keys as in `tower.state_dict()`) into `tower`."""
    if not pathlib.Path(path).is_file():
        raise ValueError(f"model.tiny.vision_checkpoint={path!r} does not exist; pass an existing vision-tower "
                         ".safetensors file, or leave it empty")
    _load_exactly(tower, load_file(path, device="cpu"), key="model.tiny.vision_checkpoint", path=path,
                  what="vision tower")


def _load_exactly(module: torch.nn.Module, state: dict, *, key: str, path: str, what: str) -> None:
    """`module.load_state_dict(state)` where every key must match; errors name the config key and the file."""
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise ValueError(f"{key}={path!r} does not fit the preset's {what} ({err}); check model.preset") from err
    if missing or unexpected:
        raise ValueError(
            f"{key}={path!r} does not match the preset's {what}: missing keys {sorted(missing)[:20]} "
            f"({len(missing)}), unexpected keys {sorted(unexpected)[:20]} ({len(unexpected)}); check model.preset"
        )


def count_parameters(module: torch.nn.Module) -> int:
    """Number of parameter elements (works on the meta device)."""
    return sum(p.numel() for p in module.parameters())
