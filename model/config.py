"""READ model configuration: which preset and weights, SasP (`SaspConfig`), the loss weights, and the tiny preset's
random-init overrides (`TinyConfig`, accepted only with preset=tiny)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

PRESETS = ("tiny", "read-7b", "read-13b")
SEG_HIDDEN_POSITIONS = ("before", "token")
DTYPES = ("float32", "bfloat16")
NUMERICS = ("exact", "read")
"""exact: SasP and SAM's encodings in exact float32 arithmetic; read: READ's own arithmetic (model.numerics)."""

WEIGHT_PATH_KEYS = ("llava_path", "sam_checkpoint", "read_checkpoint", "clip_path", "sam_arch",
                    "tiny.vision_checkpoint")
"""`ReadModelConfig` fields (dotted below `model.`) that name weight files or folders."""


@dataclass(kw_only=True)
class SaspConfig:
    """Similarity as Points: how a [SEG]'s similarity map becomes SAM point prompts (model.sasp.*). Passed whole to
    the SasP functions (`model.sasp`, `model.sasp_read`), whose keyword arguments these fields are."""

    num_points: int = 30
    """Points per [SEG]."""
    t_pos: float = 0.8
    """Cells with normalised similarity >= t_pos become positive points."""
    t_neg: float = 0.2
    """Cells with normalised similarity in [0, t_neg] become negative points."""
    down_sample: int = 2
    """The patch-grid similarity map is downsampled by this factor before cells are selected (1: every patch)."""

    def __post_init__(self) -> None:
        if self.num_points <= 0:
            raise ValueError(f"model.sasp.num_points must be > 0, got {self.num_points}")
        if not 0.0 <= self.t_neg < self.t_pos <= 1.0:
            raise ValueError(f"model.sasp.t_neg/t_pos must satisfy 0 <= t_neg < t_pos <= 1, got "
                             f"{self.t_neg}/{self.t_pos}")
        if self.down_sample <= 0:
            raise ValueError(f"model.sasp.down_sample must be > 0, got {self.down_sample}")

    def kwargs(self) -> dict[str, Any]:
        """{num_points, t_pos, t_neg, down_sample} for the SasP functions."""
        return dataclasses.asdict(self)


@dataclass(kw_only=True)
class TinyConfig:
    """Size and initialisation overrides of the tiny preset's random-init build (model.tiny.*); a real preset refuses
    them. 0 keeps the preset value."""

    clip_image_size: int = 0
    """CLIP input side in px (tiny: 112 -> 8x8 patches of 14 px)."""
    sam_image_size: int = 0
    """SAM input side in px, a multiple of 16 (tiny: 256)."""
    clip_hidden_size: int = 0
    """CLIP width (tiny: 64); its MLP is twice as wide."""
    clip_num_layers: int = 0
    """CLIP blocks (tiny: 2). LLaVA reads the second-to-last block, so with 2 the features come from one block."""
    llm_hidden_size: int = 0
    """LLM hidden size (tiny: 128); its MLP is twice as wide."""
    llm_num_layers: int = 0
    """LLM decoder layers (tiny: 2)."""
    llm_init_std: float = 0.0
    """Standard deviation of the LLM decoder layers' linear weights (0: Hugging Face's initializer_range, 0.02)."""
    projector_init_gain: float = 1.0
    """The [SEG] projector's last layer is initialised this many times larger than nn.Linear's default."""
    vision_checkpoint: str = ""
    """Vision-tower weights (.safetensors, the tower's own state dict) loaded over the built tower. Empty: keep the
    tower as built."""

    def __post_init__(self) -> None:
        for key in ("clip_image_size", "clip_hidden_size", "clip_num_layers", "sam_image_size", "llm_hidden_size",
                    "llm_num_layers"):
            if getattr(self, key) < 0:
                raise ValueError(f"model.tiny.{key} must be >= 0 (0 = preset value), got {getattr(self, key)}")
        if self.sam_image_size % 16:
            raise ValueError(f"model.tiny.sam_image_size must be a multiple of 16 (SAM patch), got "
                             f"{self.sam_image_size}")
        if self.llm_init_std < 0:
            raise ValueError(f"model.tiny.llm_init_std must be >= 0 (0 = Hugging Face's default), got "
                             f"{self.llm_init_std}")
        if self.projector_init_gain <= 0:
            raise ValueError(f"model.tiny.projector_init_gain must be > 0, got {self.projector_init_gain}")

    def changed(self) -> dict[str, Any]:
        """The fields set away from their defaults."""
        default = TinyConfig()
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}


@dataclass(kw_only=True)
class ReadModelConfig:
    """Everything needed to build (and rebuild) a READ model."""

    preset: str = "tiny"
    """Architecture: tiny (random init, built in code) | read-7b | read-13b (LLaVA-1.5 + CLIP-L/336 + SAM ViT-H)."""
    llava_path: str = ""
    """Hugging Face LLaVA-1.5 folder (save_pretrained layout), or LLaVA-1.5 in the original layout (then with
    clip_path). Empty: random init with the preset's shapes."""
    sam_checkpoint: str = ""
    """segment-anything state dict (.pth, e.g. sam_vit_h_4b8939.pth). Empty: random init."""
    read_checkpoint: str = ""
    """Released LISA/SESAME/READ checkpoint in the original LLaVA naming (file or folder), or our export folder."""
    clip_path: str = ""
    """CLIP vision-tower folder for a READ/LISA/SESAME release folder in `read_checkpoint` (those releases hold no
    CLIP weights). Empty: the folder's config.json `mm_vision_tower` (tried relative to the folder, then the working
    directory)."""
    sam_arch: str = ""
    """JSON file with SAM sizes for a release folder, for the sizes its weights do not determine (layout of
    `tiny_arch.json` beside the read-tiny oracle). Empty: inferred from the weights, ViT-H for the rest."""
    numerics: str = "exact"
    """exact: SasP and SAM's positional encodings in exact float32 arithmetic | read: READ's own arithmetic (the
    similarity and SAM's encodings in the model dtype, READ's aspect-canvas rounding, no KV cache in generation),
    so that a released READ checkpoint gives READ's points and masks. See docs/numerics.md."""
    original_seg_token_id: int = -1
    """[SEG] id in `read_checkpoint`'s vocabulary when it differs from ours (e.g. 32000 in LISA); -1: same ids."""
    seg_hidden_position: str = "before"
    """Hidden state used for each [SEG]: 'before' (the position predicting [SEG], as released checkpoints) | 'token'."""
    sasp: SaspConfig = field(default_factory=SaspConfig)
    """Similarity as Points settings (points per [SEG], thresholds, map downsampling)."""
    ce_weight: float = 1.0
    """Weight of the next-token cross-entropy."""
    bce_weight: float = 2.0
    """Weight of the per-pixel mask BCE."""
    dice_weight: float = 0.5
    """Weight of the mask Dice loss."""
    dtype: str = "float32"
    """Parameter dtype: float32 | bfloat16."""
    tiny: TinyConfig = field(default_factory=TinyConfig)
    """Random-init size and initialisation overrides, accepted only with preset=tiny."""

    def __post_init__(self) -> None:
        if isinstance(self.sasp, dict):
            self.sasp = SaspConfig(**self.sasp)
        if isinstance(self.tiny, dict):
            self.tiny = TinyConfig(**self.tiny)
        if self.preset not in PRESETS:
            raise ValueError(f"model.preset must be one of {PRESETS}, got {self.preset!r}")
        if self.seg_hidden_position not in SEG_HIDDEN_POSITIONS:
            raise ValueError(
                f"model.seg_hidden_position must be one of {SEG_HIDDEN_POSITIONS}, got {self.seg_hidden_position!r}"
            )
        if self.dtype not in DTYPES:
            raise ValueError(f"model.dtype must be one of {DTYPES} (fp16 is not supported), got {self.dtype!r}")
        if self.numerics not in NUMERICS:
            raise ValueError(f"model.numerics must be one of {NUMERICS}, got {self.numerics!r}")
        for key in ("ce_weight", "bce_weight", "dice_weight"):
            if getattr(self, key) < 0:
                raise ValueError(f"model.{key} must be >= 0, got {getattr(self, key)}")
        if self.preset != "tiny" and self.tiny.changed():
            changed = ", ".join(f"model.tiny.{k}={v}" for k, v in self.tiny.changed().items())
            raise ValueError(f"{changed}: model.tiny.* overrides apply only to preset=tiny, not {self.preset!r}; "
                             "remove them")

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, where: str = "model config") -> "ReadModelConfig":
        """A config from its `dataclasses.asdict` form; the flat layout written before SasP and the tiny overrides
        were nested (exports of format version 1, old config.yaml files) is converted (`upgrade_flat_keys`).
        `answer_style`, which moved to `model.prompt_format.PromptFormat`, is dropped here."""
        values = upgrade_flat_keys({k: v for k, v in values.items() if k != "answer_style"})
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"{where}: unknown model keys {unknown}")
        return cls(**values)

    def map_weight_paths(self, fn: Callable[[str], str]) -> "ReadModelConfig":
        """A copy with `fn` applied to every weight path (WEIGHT_PATH_KEYS)."""
        tiny = dataclasses.replace(self.tiny, vision_checkpoint=fn(self.tiny.vision_checkpoint))
        top = {key: fn(getattr(self, key)) for key in WEIGHT_PATH_KEYS if "." not in key}
        return dataclasses.replace(self, tiny=tiny, **top)

    def weight_paths(self) -> dict[str, str]:
        """{dotted key: path} of every weight path (WEIGHT_PATH_KEYS), set or not."""
        return {key: self.tiny.vision_checkpoint if key == "tiny.vision_checkpoint" else getattr(self, key)
                for key in WEIGHT_PATH_KEYS}


MOVED_KEYS = {
    **{key: f"sasp.{key}" for key in ("num_points", "t_pos", "t_neg", "down_sample")},
    **{key: f"tiny.{key}" for key in ("clip_image_size", "sam_image_size", "clip_hidden_size", "clip_num_layers",
                                      "llm_hidden_size", "llm_num_layers", "llm_init_std", "projector_init_gain",
                                      "vision_checkpoint")},
}
"""Flat `model.*` keys of the layout before SasP and the tiny overrides were nested -> their new dotted key."""


def upgrade_flat_keys(values: dict[str, Any]) -> dict[str, Any]:
    """`values` (a ReadModelConfig as a dict) with flat keys of the old layout moved under `sasp` / `tiny`. Tiny
    overrides left at their defaults are dropped, so that an old real-preset config converts."""
    out = {k: v for k, v in values.items() if k not in MOVED_KEYS}
    defaults = {**SaspConfig().kwargs(), **dataclasses.asdict(TinyConfig())}
    for old, new in MOVED_KEYS.items():
        group, key = new.split(".")
        if old in values and not (group == "tiny" and values[old] == defaults[key]):
            out[group] = {**out.get(group, {}), key: values[old]}
    return out
