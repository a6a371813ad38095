"""Our own exported READ model: `model.safetensors` + `read_config.json` (ReadModelConfig, LLaVA config, SAM shape,
token ids) + the tokenizer files + `prompt_format.json` (`model.prompt_format`). LoRA must be merged before export
(`pipelines.train.freeze.merge_lora`).

Format version 2 nests SasP and the tiny overrides (`model.sasp`, `model.tiny`) and keeps the answer style in
prompt_format.json; version-1 exports (flat keys, `answer_style` in read_config) load unchanged.

The folder is written under a temporary name and renamed into place, so a crash never leaves a half export.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, LlavaConfig, LlavaForConditionalGeneration

from model.config import ReadModelConfig
from model.construct import construction
from model.prompt_format import PROMPT_FORMAT_FILE, PromptFormat
from model.projector import SegPromptProjector
from model.read import READ
from model.read_release import FORMAT_FILE, ReadReleaseTokenizer
from model.sam import SamShape, build_sam

EXPORT_FORMAT = "readseg-export"
EXPORT_VERSION = 2
READABLE_VERSIONS = (1, 2)
CONFIG_FILE = "read_config.json"
WEIGHTS_FILE = "model.safetensors"


def _no_weight_paths(cfg: ReadModelConfig) -> ReadModelConfig:
    """An export carries every weight itself: its config never points back at the files it was built from."""
    return cfg.map_weight_paths(lambda _: "")


def is_export_dir(path: str) -> bool:
    """True when `path` is a folder written by `save_export`."""
    return (pathlib.Path(path) / CONFIG_FILE).is_file()


def save_export(model: READ, tokenizer, cfg: ReadModelConfig, out_dir: str,
                prompt_format: PromptFormat | None = None) -> None:
    """Write `model` (LoRA merged), `tokenizer`, `cfg` and `prompt_format` (default: READ's plain answers; the
    model's image-token count is recorded in it) into `out_dir` (an existing folder is replaced). Not atomic by
    itself: jobs write exports through `pipelines.storage.atomic_folder` (`pipelines.train.export`)."""
    state = model.state_dict()
    lora = [k for k in state if "lora_" in k or ".base_layer." in k]
    if lora:
        raise ValueError(
            f"save_export: the model still has LoRA adapters ({lora[:3]}...); call "
            "pipelines.train.freeze.merge_lora(model) before exporting"
        )
    out = pathlib.Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    save_file(tensors, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    meta = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "read_config": dataclasses.asdict(_no_weight_paths(cfg)),
        "llava_config": model.llava.config.to_dict(),
        "sam_shape": _sam_shape_of(model).to_dict(),
        "seg_token_id": model.seg_token_id,
        "image_token_id": model.image_token_id,
    }
    if getattr(model, "added_rows", None):  # rows a base LLaVA did not have, initialised as READ does
        meta["added_rows"] = model.added_rows
    (out / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
    tokenizer.save_pretrained(str(out))
    (prompt_format or PromptFormat()).for_model(model.num_image_tokens).save(out)


def load_export(
    out_dir: str, *, device: str | torch.device = "cpu", runtime_cfg: ReadModelConfig | None = None
) -> tuple[READ, object, ReadModelConfig]:
    """Rebuild an exported model. `runtime_cfg` (optional) overrides the runtime settings (SasP, [SEG] position,
    loss weights, dtype) while the architecture and weights come from the export. Returns (model, tokenizer, cfg)."""
    folder = pathlib.Path(out_dir)
    if not is_export_dir(out_dir):
        raise ValueError(f"{out_dir!r} is not a READ export folder (no {CONFIG_FILE})")
    meta = json.loads((folder / CONFIG_FILE).read_text())
    if meta.get("format") != EXPORT_FORMAT or meta.get("version") not in READABLE_VERSIONS:
        raise ValueError(f"{out_dir}/{CONFIG_FILE}: format {meta.get('format')} v{meta.get('version')} unsupported "
                         f"(this readseg reads {EXPORT_FORMAT} v{READABLE_VERSIONS}; use the readseg that wrote it)")
    cfg = ReadModelConfig.from_dict(meta["read_config"], where=f"{out_dir}/{CONFIG_FILE}")
    if runtime_cfg is not None:  # the architecture (and how it was built) stays the export's
        cfg = _no_weight_paths(dataclasses.replace(runtime_cfg, preset=cfg.preset, tiny=cfg.tiny))
    dtype = getattr(torch, cfg.dtype)
    if (folder / FORMAT_FILE).is_file():  # READ's prompt format (a model trained from a READ release folder)
        tokenizer = ReadReleaseTokenizer.from_export(folder)
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    shape = SamShape.from_dict(meta["sam_shape"])
    llava_cfg = LlavaConfig.from_dict(meta["llava_config"])
    with construction(device, dtype):
        llava = LlavaForConditionalGeneration(llava_cfg)
        sam = build_sam(shape)
        projector = SegPromptProjector(llm_dim=llava_cfg.text_config.hidden_size, prompt_dim=shape.prompt_dim)
    model = READ(
        cfg=cfg, llava=llava, sam=sam, projector=projector, tokenizer=tokenizer,
        seg_token_id=meta["seg_token_id"], image_token_id=meta["image_token_id"],
    )
    state = load_file(str(folder / WEIGHTS_FILE), device=str(device) if str(device) != "meta" else "cpu")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{out_dir}/{WEIGHTS_FILE}: missing keys {missing[:20]}, unexpected keys {unexpected[:20]}")
    return model.to(device=device, dtype=dtype), tokenizer, cfg


def _sam_shape_of(model: READ) -> SamShape:
    enc, dec = model.sam.image_encoder, model.sam.mask_decoder
    blocks = enc.blocks
    return SamShape(
        image_size=enc.img_size,
        encoder_embed_dim=enc.patch_embed.proj.out_channels,
        encoder_depth=len(blocks),
        encoder_num_heads=blocks[0].attn.num_heads,
        encoder_global_attn_indexes=tuple(i for i, b in enumerate(blocks) if b.window_size == 0),
        window_size=max(b.window_size for b in blocks),
        prompt_dim=dec.transformer_dim,
        decoder_mlp_dim=dec.transformer.layers[0].mlp.lin1.out_features,
        decoder_num_heads=dec.transformer.layers[0].self_attn.num_heads,
        iou_head_hidden_dim=dec.iou_prediction_head.layers[0].out_features,
        mask_in_chans=model.sam.prompt_encoder.mask_downscaling[-1].in_channels,
    )


def saved_prompt_format(folder: str | pathlib.Path) -> dict[str, Any]:
    """The prompt format saved in a checkpoint folder, as {key: value}: `prompt_format.json`, else the
    `answer_style` that exports of format version 1 kept in read_config.json; {} for folders with neither (release
    folders, random-init labels)."""
    path = pathlib.Path(folder) if folder and "://" not in str(folder) else None
    if path is None or not path.is_dir():
        return {}
    saved = path / PROMPT_FORMAT_FILE
    if saved.is_file():
        values = json.loads(saved.read_text())
        known = {f.name for f in dataclasses.fields(PromptFormat)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{saved}: unknown prompt format keys {unknown} (written by a newer readseg?)")
        return values
    legacy = path / CONFIG_FILE
    if legacy.is_file():
        style = json.loads(legacy.read_text()).get("read_config", {}).get("answer_style")
        return {"answer_style": style} if style else {}
    return {}


def load_prompt_format(folder: str | pathlib.Path) -> PromptFormat:
    """The `PromptFormat` saved in `folder` (`saved_prompt_format`), READ's plain answers when none is."""
    return PromptFormat(**saved_prompt_format(folder))
