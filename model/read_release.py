"""Load a READ / LISA / SESAME release folder exactly as it is published (no preset): `load_read_release`.

A release folder (READ's `merge_lora_weights_and_save_hf_model.py` output, transformers 4.31 `save_pretrained`):
`config.json` (LLaMA sizes + LLaVA `mm_*` keys + `out_dim`), `pytorch_model.bin` or `pytorch_model-0000k-of-0000n.bin`
+ `pytorch_model.bin.index.json` (or safetensors), READ's tokenizer files (`tokenizer.model`, `added_tokens.json`, ...).
The weights hold NO vision tower: CLIP is loaded at run time from `mm_vision_tower` / `vision_tower` (a separate
CLIP folder, e.g. openai/clip-vit-large-patch14-336). The SAM image-encoder sizes are not recorded (READ hard-codes
ViT-H); they are inferred from the weights.

What comes from where:
  * LLaMA text config: `config.json` (hidden, layers, heads, kv heads, intermediate, rms eps, rope theta,
    max positions); vocabulary = rows of `model.embed_tokens.weight` (+1, see "image placeholder").
  * CLIP: `clip_path`, else `mm_vision_tower` / `vision_tower` (relative paths tried against the folder, then the
    working directory). Config and weights from that folder (a `CLIPVisionModel` or a full `CLIPModel` folder; only
    `vision_model.*` is used). Features: `hidden_states[mm_vision_select_layer]` (-2) without CLS
    (`mm_vision_select_feature: patch`); projector `mlp2x_gelu` (Linear, exact GELU, Linear).
  * SAM: every size that the weights determine is read from them (see `infer_sam_shape`); only the mask-decoder
    heads (no weight shape depends on them) come from `sam_arch` (JSON in the layout of the oracle's
    `tiny_arch.json`) or the ViT-H default (8). A `sam_arch` that contradicts the weights is an error.
  * [SEG] projector: LLM width -> `out_dim` (also checked against `text_hidden_fcs.0.2`).
  * Token ids: `ReadPromptFormat.from_pretrained(folder)` (READ's own tokenisation; a vocabulary without `[SEG]`
    is an error there).

Image placeholder: READ's vocabulary has no `<image>` token (its prompts carry the out-of-vocabulary id -200, which
`prepare_inputs_labels_for_multimodal` replaces by the 576 projected CLIP features). Our `READ` class finds image
positions by an in-vocabulary id and embeds `input_ids` before splicing, so the loader appends ONE extra row to the
vocabulary: `image_token_id = rows of embed_tokens` (32003 for READ). Its embedding row and its `lm_head` row are
zero; the embedding is always overwritten by image features and `READ.generate` masks its logit to -inf. Callers
expand READ's ids by replacing each -200 with `num_image_tokens` copies of `image_token_id` (`expand_read_ids`).
Caveat: `READ.forward`'s cross-entropy still sees the extra (zero-weight, logit 0) class in its
softmax normaliser, so training CE differs slightly from READ's 32003-way CE until `READ.forward` masks
`logits[..., image_token_id]` as generation does.

Errors (ValueError, each naming the file / key and the fix): no weights, a DeepSpeed ZeRO folder, an un-merged LoRA,
unmapped or missing keys, a missing CLIP folder (`model.clip_path`), a missing tokenizer (from `ReadPromptFormat`).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
from typing import Any

import torch
from safetensors.torch import load_file
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

from model.config import ReadModelConfig
from model.construct import construction
from model.convert import original_to_read_name
from model.projector import SegPromptProjector
from model.read import READ
from model.read_prompt import IMAGE_TOKEN, IMAGE_TOKEN_INDEX, ReadPromptFormat
from model.sam import PATCH_SIZE, SAM_VIT_H, SamShape, build_sam

__all__ = ["load_read_release", "load_llava_base", "infer_sam_shape", "read_release_state_dict", "expand_read_ids",
           "ReadReleaseTokenizer", "is_read_release_dir"]

_LLAVA_KEYS = ("mm_vision_tower", "mm_projector_type", "mm_hidden_size")


def is_read_release_dir(path: str | os.PathLike) -> bool:
    """True when `path` is a folder whose config.json is an original-LLaVA (READ / LISA / SESAME / llava-v1.5)
    config: it names `mm_vision_tower` / `mm_projector_type` / `mm_hidden_size`."""
    config = pathlib.Path(path) / "config.json"
    if not config.is_file():
        return False
    try:
        keys = json.loads(config.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(keys, dict) and any(key in keys for key in _LLAVA_KEYS)

_IGNORED_SUFFIXES = ("rotary_emb.inv_freq", "embeddings.position_ids")
_SAM_PREFIX = "model.visual_model."
_ENC = _SAM_PREFIX + "image_encoder."
_MERGE_HINT = (
    "merge it first with READ's merge_lora_weights_and_save_hf_model.py (scripts/merge_lora_weight.sh: --version "
    "<base LLaVA> --weight <the fp32 state dict from zero_to_fp32.py> --save_path <release folder>) and load the "
    "folder it writes"
)
_ZERO_HINT = (
    "this is a DeepSpeed ZeRO checkpoint folder (global_step*/ shards): consolidate it with DeepSpeed's "
    "zero_to_fp32.py (`python zero_to_fp32.py <ckpt_dir> pytorch_model.bin`, the script DeepSpeed saves next to "
    "global_step*/), then " + _MERGE_HINT
)


class ReadReleaseTokenizer(ReadPromptFormat):
    """`ReadPromptFormat` with the attribute names `READ.generate` uses (`eos_token_id`, `pad_token_id`), and
    `image_token_id` (the extra vocabulary row, see the module docstring)."""

    image_token_id: int = -1

    @property
    def eos_token_id(self) -> int:
        return self.eos_id

    @property
    def pad_token_id(self) -> int:
        return self.pad_id

    @property
    def bos_token_id(self) -> int:
        return self.bos_id

    @property
    def unk_token_id(self) -> int:
        return self.unk_id

    def convert_tokens_to_ids(self, token: str) -> int:
        """Id of one token; `<image>` is the model's placeholder row (`image_token_id`)."""
        return self.image_token_id if token == IMAGE_TOKEN else self.token_to_id(token)

    def decode(self, ids, *, skip_special_tokens: bool = True) -> str:  # noqa: D102 - drop the placeholder id
        return super().decode([int(i) for i in ids if int(i) != self.image_token_id],
                              skip_special_tokens=skip_special_tokens)

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Copy READ's tokenizer files into `folder` (an export), with the settings the loader needs in
        `read_prompt_format.json` (`use_im_start_end`, `image_token_id`)."""
        out = pathlib.Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        for name in TOKENIZER_FILES:
            if (self.folder / name).is_file() and name != "added_tokens.json":
                shutil.copyfile(self.folder / name, out / name)
        (out / "added_tokens.json").write_text(json.dumps(self.added_tokens, indent=1, sort_keys=True))
        settings = {"use_im_start_end": self.use_im_start_end, "image_token_id": self.image_token_id,
                    "model_max_length": self.model_max_length}
        (out / FORMAT_FILE).write_text(json.dumps(settings, indent=1))

    @classmethod
    def from_export(cls, folder: str | os.PathLike) -> "ReadReleaseTokenizer":
        """The tokenizer `save_pretrained` wrote into an export folder."""
        settings = json.loads((pathlib.Path(folder) / FORMAT_FILE).read_text())
        tokenizer = cls(folder, use_im_start_end=settings["use_im_start_end"],
                        model_max_length=settings["model_max_length"])
        tokenizer.image_token_id = int(settings["image_token_id"])
        return tokenizer


TOKENIZER_FILES = ("tokenizer.model", "added_tokens.json", "special_tokens_map.json", "tokenizer_config.json")
"""READ's tokenizer files (what its release script saves beside the weights)."""
FORMAT_FILE = "read_prompt_format.json"
"""Written into exports of models with READ's prompt format: how to rebuild their tokenizer."""


def expand_read_ids(ids: Any, image_token_id: int, num_image_tokens: int) -> torch.Tensor:
    """READ ids (1-D or (C, T), -200 = one image) -> ids with each -200 replaced by `num_image_tokens` copies of
    `image_token_id` (what `READ` consumes). 2-D input must have the same number of placeholders per row."""
    t = torch.as_tensor(ids)
    rows = [t] if t.dim() == 1 else list(t)
    out = []
    for row in rows:
        parts, start = [], 0
        for p in (row == IMAGE_TOKEN_INDEX).nonzero(as_tuple=True)[0].tolist():
            parts += [row[start:p], row.new_full((num_image_tokens,), image_token_id)]
            start = p + 1
        parts.append(row[start:])
        out.append(torch.cat(parts))
    return out[0] if t.dim() == 1 else torch.stack(out)


# ---------------------------------------------------------------------------------------------------- weights files
def read_release_state_dict(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a release folder: sharded `*.bin` + `pytorch_model.bin.index.json`, single
    `pytorch_model.bin`, or `model.safetensors` (+ `model.safetensors.index.json`). Raises the ZeRO / LoRA /
    no-weights errors described in the module docstring."""
    root = pathlib.Path(folder)
    if not root.is_dir():
        raise ValueError(f"model.read_checkpoint={str(folder)!r} is not a folder; pass the release folder "
                         "(config.json, pytorch_model*.bin, tokenizer files)")
    files: list[pathlib.Path] = []
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = root / index_name
        if index.is_file():
            weight_map = json.loads(index.read_text()).get("weight_map") or {}
            names = sorted(set(weight_map.values()))
            absent = [n for n in names if not (root / n).is_file()]
            if absent:
                raise ValueError(f"{index}: lists shards that are not in the folder: {absent}; download every shard "
                                 "of the release next to the index")
            files = [root / n for n in names]
            break
    if not files:
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (root / name).is_file():
                files = [root / name]
                break
    if not files:
        files = sorted(root.glob("model-*.safetensors")) or sorted(root.glob("pytorch_model-*.bin"))
    if not files:
        if (root / "adapter_model.bin").is_file() or (root / "adapter_model.safetensors").is_file():
            raise ValueError(f"{root}: holds only a PEFT LoRA adapter (adapter_model.*), not a merged model; "
                             + _MERGE_HINT)
        if (root / "zero_to_fp32.py").is_file() or list(root.glob("global_step*")) or (root / "latest").is_file():
            raise ValueError(f"{root}: no consolidated weights; " + _ZERO_HINT)
        raise ValueError(
            f"{root}: no weights (expected pytorch_model.bin, or pytorch_model-0000k-of-0000n.bin shards + "
            f"pytorch_model.bin.index.json, or model.safetensors); download the release's weight files into this "
            f"folder (READ-LLaVA-v1.5-7B-for-ReasonSeg-valset-1epoch ships pytorch_model-0000*.bin + index)"
        )
    state: dict[str, torch.Tensor] = {}
    for f in files:
        if f.suffix == ".safetensors":
            loaded = load_file(str(f))
        else:
            loaded = torch.load(str(f), map_location="cpu", weights_only=True)
            if isinstance(loaded, dict) and "module" in loaded and isinstance(loaded["module"], dict):
                raise ValueError(f"{f}: a DeepSpeed engine state ('module' key), not a state dict; " + _ZERO_HINT)
            loaded = loaded.get("state_dict", loaded)
        state.update(loaded)
    lora = sorted(k for k in state if "lora_A" in k or "lora_B" in k)
    if lora:
        raise ValueError(f"{root}: {len(lora)} un-merged LoRA tensors (e.g. {lora[:3]}); " + _MERGE_HINT)
    return state


# ---------------------------------------------------------------------------------------------------- SAM sizes
def _sam_arch_json(path: str) -> dict:
    if not path:
        return {}
    p = pathlib.Path(path)
    if not p.is_file():
        raise ValueError(f"model.sam_arch={path!r} does not exist; pass a JSON in the layout of tiny_arch.json "
                         "({'sam': {...}}) or leave it empty for ViT-H")
    d = json.loads(p.read_text())
    return d.get("sam", d)


def infer_sam_shape(state: dict[str, torch.Tensor], sam_arch: str = "") -> SamShape:
    """SAM sizes from the weights (original naming, `model.visual_model.*`), the rest from `sam_arch` / ViT-H.

    From the weights: image size (pos_embed grid x 16), embed dim (patch_embed), depth (block count), heads
    (embed dim / head dim, the rel_pos width), global-attention blocks (rel_pos length 2*grid-1; windowed blocks
    have 2*window-1, which also gives the window), prompt dim (neck), decoder MLP width, IoU-head width, mask-prompt
    channels. From `sam_arch` (else ViT-H): the mask-decoder heads. Raises when `sam_arch` contradicts the weights.
    """
    arch = _sam_arch_json(sam_arch)
    need = [_ENC + "pos_embed", _ENC + "patch_embed.proj.weight", _ENC + "neck.0.weight"]
    absent = [k for k in need if k not in state]
    if absent:
        raise ValueError(f"the checkpoint has no SAM image encoder ({absent} missing): not a READ/LISA/SESAME release")
    grid = state[_ENC + "pos_embed"].shape[1]
    embed_dim = state[_ENC + "patch_embed.proj.weight"].shape[0]
    blocks = sorted({int(m.group(1)) for k in state if (m := re.match(re.escape(_ENC) + r"blocks\.(\d+)\.", k))})
    if blocks != list(range(len(blocks))):
        raise ValueError(f"SAM image encoder blocks are not numbered 0..n-1: {blocks}")
    global_idx, windows, head_dims = [], set(), set()
    for b in blocks:
        rel = state.get(f"{_ENC}blocks.{b}.attn.rel_pos_h")
        if rel is None:
            raise ValueError(f"SAM block {b} has no attn.rel_pos_h (use_rel_pos=False is not READ's SAM)")
        head_dims.add(rel.shape[1])
        if rel.shape[0] == 2 * grid - 1:
            global_idx.append(b)
        else:
            windows.add((rel.shape[0] + 1) // 2)
    if len(head_dims) != 1 or len(windows) > 1:
        raise ValueError(f"inconsistent SAM rel_pos shapes: head dims {head_dims}, windows {windows}")
    head_dim = head_dims.pop()
    dec = _SAM_PREFIX + "mask_decoder."
    inferred = dict(
        image_size=grid * PATCH_SIZE,
        encoder_embed_dim=embed_dim,
        encoder_depth=len(blocks),
        encoder_num_heads=embed_dim // head_dim,
        encoder_global_attn_indexes=tuple(global_idx),
        window_size=windows.pop() if windows else int(arch.get("window_size", SAM_VIT_H.window_size)),
        prompt_dim=state[_ENC + "neck.0.weight"].shape[0],
    )
    if dec + "transformer.layers.0.mlp.lin1.weight" in state:
        inferred["decoder_mlp_dim"] = state[dec + "transformer.layers.0.mlp.lin1.weight"].shape[0]
    if dec + "iou_prediction_head.layers.0.weight" in state:
        inferred["iou_head_hidden_dim"] = state[dec + "iou_prediction_head.layers.0.weight"].shape[0]
    mask_in = _SAM_PREFIX + "prompt_encoder.mask_downscaling.3.weight"
    if mask_in in state:
        inferred["mask_in_chans"] = state[mask_in].shape[0]
    declared = {
        "image_size": arch.get("image_size"),
        "encoder_embed_dim": arch.get("encoder_embed_dim"),
        "encoder_depth": arch.get("encoder_depth"),
        "encoder_num_heads": arch.get("encoder_num_heads"),
        "encoder_global_attn_indexes": tuple(arch["encoder_global_attn_indexes"])
        if "encoder_global_attn_indexes" in arch else None,
        "window_size": arch.get("window_size"),
        "prompt_dim": arch.get("prompt_embed_dim", arch.get("out_chans")),
        "decoder_mlp_dim": (arch.get("mask_decoder") or {}).get("mlp_dim"),
        "iou_head_hidden_dim": (arch.get("mask_decoder") or {}).get("iou_head_hidden_dim"),
        "mask_in_chans": (arch.get("prompt_encoder") or {}).get("mask_in_chans"),
    }
    clash = [f"{k}: sam_arch {v} vs weights {inferred[k]}" for k, v in declared.items()
             if v is not None and k in inferred and v != inferred[k]]
    if clash:
        raise ValueError(f"model.sam_arch={sam_arch!r} contradicts the checkpoint's SAM weights: {clash}")
    heads = (arch.get("mask_decoder") or {}).get("num_heads", SAM_VIT_H.decoder_num_heads)
    return SamShape(**{**SAM_VIT_H.to_dict(), **inferred, "decoder_num_heads": int(heads)})


# ---------------------------------------------------------------------------------------------------- CLIP
def _resolve_clip(folder: pathlib.Path, config: dict, clip_path: str) -> pathlib.Path:
    if clip_path:
        candidates, source = [pathlib.Path(clip_path)], f"clip_path={clip_path!r}"
    else:
        name = config.get("mm_vision_tower") or config.get("vision_tower")
        if not name:
            raise ValueError(f"{folder}/config.json has no mm_vision_tower / vision_tower; set model.clip_path to the "
                             "CLIP folder (e.g. a local copy of openai/clip-vit-large-patch14-336)")
        p = pathlib.Path(name)
        candidates = [p] if p.is_absolute() else [folder / p, pathlib.Path.cwd() / p]
        source = f"config.json mm_vision_tower={name!r}"
    for c in candidates:
        if (c / "config.json").is_file():
            return c
    raise ValueError(
        f"CLIP vision tower not found ({source}; tried {[str(c) for c in candidates]}). READ releases do not "
        f"contain the vision tower: set model.clip_path to a local CLIP folder with config.json + weights (READ uses "
        f"openai/clip-vit-large-patch14-336), or place it where mm_vision_tower points, relative to the release "
        f"folder or the working directory"
    )


def _clip_state(clip: pathlib.Path) -> dict[str, torch.Tensor]:
    try:
        state = read_release_state_dict(clip)
    except ValueError as err:
        raise ValueError(f"model.clip_path: {err}") from err
    vision = {k.removeprefix("vision_model."): v for k, v in state.items() if k.startswith("vision_model.")}
    if not vision:
        raise ValueError(f"model.clip_path={str(clip)!r}: no vision_model.* tensors (not a CLIP checkpoint)")
    return vision


# ---------------------------------------------------------------------------------------------------- build
def _llama_config(config: dict, vocab_rows: int) -> LlamaConfig:
    if config.get("rope_scaling"):
        raise ValueError(f"config.json rope_scaling={config['rope_scaling']!r} is not supported by load_read_release")
    heads = int(config["num_attention_heads"])
    return LlamaConfig(
        vocab_size=vocab_rows + 1,  # + the image placeholder row
        hidden_size=int(config["hidden_size"]),
        intermediate_size=int(config["intermediate_size"]),
        num_hidden_layers=int(config["num_hidden_layers"]),
        num_attention_heads=heads,
        num_key_value_heads=int(config.get("num_key_value_heads") or heads),
        max_position_embeddings=int(config.get("max_position_embeddings", 4096)),
        rms_norm_eps=float(config.get("rms_norm_eps", 1e-6)),
        rope_theta=float(config.get("rope_theta", 10000.0)),
        hidden_act=config.get("hidden_act", "silu"),
        pad_token_id=config.get("pad_token_id", 0),
        bos_token_id=config.get("bos_token_id", 1),
        eos_token_id=config.get("eos_token_id", 2),
        tie_word_embeddings=False,
    )


def _llava_config(root: pathlib.Path, missing: str) -> dict:
    """The folder's original-LLaVA config.json, checked (`missing`: the error when there is none)."""
    config_file = root / "config.json"
    if not config_file.is_file():
        raise ValueError(missing)
    config = json.loads(config_file.read_text())
    _check_llava_keys(config, root)
    return config


def _check_llava_keys(config: dict, folder: pathlib.Path) -> None:
    projector = config.get("mm_projector_type", "mlp2x_gelu")
    if projector != "mlp2x_gelu":
        raise ValueError(f"{folder}/config.json mm_projector_type={projector!r}: only mlp2x_gelu is supported")
    feature = config.get("mm_vision_select_feature", "patch")
    if feature != "patch":
        raise ValueError(f"{folder}/config.json mm_vision_select_feature={feature!r}: only 'patch' is supported")


def load_read_release(
    folder: str | os.PathLike,
    *,
    clip_path: str = "",
    sam_arch: str = "",
    dtype: torch.dtype = torch.float32,
    cfg: ReadModelConfig | None = None,
) -> READ:
    """Build READ from a release folder as published (see module docstring).

    Args:
        folder: the release folder (config.json, weights, READ's tokenizer files).
        clip_path: CLIP folder; empty: `mm_vision_tower` / `vision_tower` of config.json.
        sam_arch: JSON with SAM sizes (layout of the oracle's tiny_arch.json); empty: inferred + ViT-H defaults.
        dtype: parameter dtype (weights are stored in bf16; float32 upcasts exactly).
        cfg: runtime settings for `READ` (SasP, losses); default `ReadModelConfig()` with `dtype`.

    Returns:
        a `READ` on the CPU whose `tokenizer` is a `ReadReleaseTokenizer`; `image_token_id` is the extra row.
    """
    root = pathlib.Path(folder)
    config = _llava_config(root, f"{root}: no config.json; pass the release folder as published (config.json, "
                                 "pytorch_model*.bin, tokenizer.model, added_tokens.json)")
    tokenizer = ReadReleaseTokenizer.from_pretrained(root)  # raises on a missing tokenizer / no [SEG]
    state = read_release_state_dict(root)
    return _build(root, config, tokenizer, state, clip_path=clip_path, sam_arch=sam_arch, dtype=dtype, cfg=cfg)


READ_ADDED_TOKENS = ("[SEG]", "<im_start>", "<im_end>")
"""What READ's training adds to a base LLaVA's tokenizer, in this order (ids 32000, 32001, 32002 for LLaMA's 32000)."""
NEW_ROW_STD = 0.02
"""READ grows the embeddings with `resize_token_embeddings`, whose new rows are drawn from N(0, 0.02)."""


def load_llava_base(
    folder: str | os.PathLike,
    *,
    sam_checkpoint: str,
    clip_path: str = "",
    dtype: torch.dtype = torch.float32,
    cfg: ReadModelConfig | None = None,
) -> READ:
    """LLaVA-1.5 in the original layout (e.g. liuhaotian/llava-v1.5-7b + its CLIP folder) as the model READ trains
    from, built as READ's `init_READ_model` builds it: `[SEG]`, `<im_start>`, `<im_end>` added to the tokenizer (the
    ids of READ's releases), the new embedding and lm_head rows drawn from N(0, 0.02) with the global torch RNG
    (`resize_token_embeddings`), `<image>` wrapped in `<im_start>`/`<im_end>` (READ's `use_mm_start_end`), SAM from
    `sam_checkpoint` (a segment-anything `.pth`), the `[SEG]` projector freshly initialised. `model.added_rows`
    records which rows were initialised so (saved with exports)."""
    root = pathlib.Path(folder)
    config = _llava_config(root, f"model.llava_path={str(root)!r}: no config.json (an original-layout LLaVA folder "
                                 "has config.json with mm_vision_tower, pytorch_model*.bin and tokenizer.model)")
    if not sam_checkpoint or not pathlib.Path(sam_checkpoint).is_file():
        raise ValueError(f"model.sam_checkpoint={sam_checkpoint!r}: a base LLaVA has no SAM; pass "
                         "sam_vit_h_4b8939.pth (segment-anything's release)")
    tokenizer = ReadReleaseTokenizer(root, add_tokens=READ_ADDED_TOKENS, use_im_start_end=True)
    state = read_release_state_dict(root)
    if any(k.startswith(_SAM_PREFIX) or k.startswith("model.text_hidden_fcs.") for k in state):
        raise ValueError(f"model.llava_path={str(root)!r} already holds SAM / [SEG] weights: it is a READ / LISA / "
                         "SESAME release; pass it as model.read_checkpoint")
    sam_state = torch.load(sam_checkpoint, map_location="cpu", weights_only=True)
    state.update({_SAM_PREFIX + k: v for k, v in sam_state.items()})
    added = {}
    for key in ("model.embed_tokens.weight", "lm_head.weight"):
        rows = state[key]
        grow = tokenizer.vocab_size - rows.shape[0]
        if grow > 0:
            new = torch.randn(grow, rows.shape[1]) * NEW_ROW_STD
            state[key] = torch.cat([rows, new.to(rows.dtype)])
            added[key] = [rows.shape[0], tokenizer.vocab_size]
    model = _build(root, config, tokenizer, state, clip_path=clip_path, sam_arch="", dtype=dtype, cfg=cfg,
                   fresh=("projector.",))
    model.added_rows = {"tokens": {t: tokenizer.token_to_id(t) for t in READ_ADDED_TOKENS},
                        "init": f"normal(0, {NEW_ROW_STD})", "rows": added}
    return model


def _build(root: pathlib.Path, config: dict, tokenizer: ReadReleaseTokenizer, state: dict, *, clip_path: str,
           sam_arch: str, dtype: torch.dtype, cfg: ReadModelConfig | None, fresh: tuple[str, ...] = ()) -> READ:
    """READ from an original-layout config, tokenizer and state dict (CLIP from its folder); parameters whose
    names start with one of `fresh` keep their initialisation."""
    embed = state.get("model.embed_tokens.weight")
    if embed is None:
        raise ValueError(f"{root}: the weights have no model.embed_tokens.weight (keys like {sorted(state)[:5]})")
    vocab_rows = embed.shape[0]
    if tokenizer.vocab_size > vocab_rows:
        raise ValueError(f"{root}: the tokenizer has {tokenizer.vocab_size} tokens but embed_tokens only "
                         f"{vocab_rows} rows; the tokenizer files do not belong to these weights")
    image_token_id = vocab_rows
    tokenizer.image_token_id = image_token_id

    clip_folder = _resolve_clip(root, config, clip_path)
    clip_state = _clip_state(clip_folder)
    vision_cfg = CLIPVisionConfig.from_pretrained(str(clip_folder))
    if config.get("mm_hidden_size") not in (None, vision_cfg.hidden_size):
        raise ValueError(f"model.clip_path={str(clip_folder)!r}: CLIP width {vision_cfg.hidden_size} but the release "
                         f"was trained with mm_hidden_size={config['mm_hidden_size']}; wrong CLIP folder")
    text_cfg = _llama_config(config, vocab_rows)
    num_patches = (vision_cfg.image_size // vision_cfg.patch_size) ** 2
    llava_cfg = LlavaConfig(
        vision_config=vision_cfg, text_config=text_cfg, image_token_index=image_token_id,
        image_seq_length=num_patches, projector_hidden_act="gelu", vision_feature_select_strategy="default",
        vision_feature_layer=int(config.get("mm_vision_select_layer", -2)), pad_token_id=text_cfg.pad_token_id,
    )
    shape = infer_sam_shape(state, sam_arch)
    fc2 = state.get("model.text_hidden_fcs.0.2.weight")
    out_dim = int(config.get("out_dim", fc2.shape[0] if fc2 is not None else shape.prompt_dim))
    if out_dim != shape.prompt_dim:
        raise ValueError(f"{root}/config.json out_dim={out_dim} but SAM's prompt dim is {shape.prompt_dim}")
    with construction("cpu", torch.float32):
        llava = LlavaForConditionalGeneration(llava_cfg)
        sam = build_sam(shape)
        projector = SegPromptProjector(llm_dim=text_cfg.hidden_size, prompt_dim=out_dim)
    run_cfg = cfg or ReadModelConfig(dtype="bfloat16" if dtype == torch.bfloat16 else "float32")
    model = READ(cfg=run_cfg, llava=llava, sam=sam, projector=projector, tokenizer=tokenizer,
                 seg_token_id=tokenizer.seg_token_id, image_token_id=image_token_id)
    _load_weights(model, state, clip_state, root, clip_folder, fresh=fresh)
    return model.to(dtype=dtype).eval()


@torch.no_grad()
def _load_weights(model: READ, state: dict, clip_state: dict, root: pathlib.Path, clip: pathlib.Path, *,
                  fresh: tuple[str, ...] = ()) -> None:
    target = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unexpected, inv_freqs = [], []
    for key, tensor in state.items():
        if key.endswith(_IGNORED_SUFFIXES):
            if key.endswith("rotary_emb.inv_freq"):
                inv_freqs.append((key, tensor))
            continue
        if ".vision_tower." in key:  # some releases keep CLIP; the CLIP folder is authoritative for READ's
            continue
        new = original_to_read_name(key)
        if new is None or new not in target:
            unexpected.append(key)
        else:
            mapped[new] = tensor
    for key, tensor in clip_state.items():
        if key.endswith(_IGNORED_SUFFIXES):
            continue
        new = "llava.model.vision_tower." + key
        if new not in target:
            unexpected.append(f"{clip}: vision_model.{key}")
        else:
            mapped[new] = tensor
    missing = sorted(k for k in set(target) - set(mapped)
                     if not k.endswith(_IGNORED_SUFFIXES + ("pixel_mean", "pixel_std"))
                     and not k.startswith(fresh))
    if unexpected or missing:
        raise ValueError(
            f"{root}: the weights do not match the model built from its config.json: {len(unexpected)} unexpected "
            f"keys {sorted(unexpected)[:30]}, {len(missing)} missing (our names) {missing[:30]}; check that the "
            f"folder is a merged READ/LISA/SESAME release and model.clip_path / model.sam_arch"
        )
    vocab_keys = ("llava.model.language_model.embed_tokens.weight", "llava.lm_head.weight")
    bad = []
    for key, tensor in mapped.items():
        want = target[key]
        if key in vocab_keys and tensor.shape[0] == want.shape[0] - 1 and tensor.shape[1:] == want.shape[1:]:
            want.zero_()  # the image placeholder row stays zero
            want[: tensor.shape[0]].copy_(tensor)
        elif tensor.shape != want.shape:
            bad.append(f"{key}: checkpoint {tuple(tensor.shape)} vs model {tuple(want.shape)}")
        else:
            want.copy_(tensor)
    if bad:
        raise ValueError(f"{root}: shape mismatches {bad[:30]}")
    rotary = model.llava.model.language_model.rotary_emb.inv_freq
    for key, tensor in inv_freqs:
        if tensor.shape != rotary.shape or not torch.allclose(tensor.float(), rotary.float().cpu(), rtol=1e-5):
            raise ValueError(f"{root}: {key} does not match rope_theta={model.llava.config.text_config.rope_theta} "
                             "of config.json (set rope_theta in config.json)")
