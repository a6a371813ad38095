"""READ model configuration: which preset, which weights, SasP and loss settings, and tiny-size overrides."""

from __future__ import annotations

from dataclasses import dataclass

PRESETS = ("tiny", "read-7b", "read-13b")
SEG_HIDDEN_POSITIONS = ("before", "token")
DTYPES = ("float32", "bfloat16")
NUMERICS = ("exact", "read")
"""exact: SasP and SAM's encodings in exact float32 arithmetic; read: READ's own arithmetic (model.numerics)."""
ANSWER_STYLES = ("plain", "echo")
"""plain: READ's answers; echo: short queries are named before their [SEG] (pipelines.data.templates)."""


WEIGHT_PATH_KEYS = ("llava_path", "sam_checkpoint", "read_checkpoint", "vision_checkpoint", "clip_path", "sam_arch")
"""`ReadModelConfig` fields that name weight files or folders."""


@dataclass(kw_only=True)
class ReadModelConfig:
    """Everything needed to build (and rebuild) a READ model."""

    preset: str = "tiny"
    """Architecture: tiny (random init, built in code) | read-7b | read-13b (LLaVA-1.5 + CLIP-L/336 + SAM ViT-H)."""
    llava_path: str = ""
    """Hugging Face LLaVA-1.5 folder (save_pretrained layout). Empty: random init with the preset's shapes."""
    sam_checkpoint: str = ""
    """segment-anything state dict (.pth, e.g. sam_vit_h_4b8939.pth). Empty: random init."""
    vision_checkpoint: str = ""
    """Vision-tower weights (.safetensors, the tower's own state dict) loaded over the built tower, e.g. the
    `vision_tower.safetensors` that demo.jobs.pretrain_vision writes for the tiny preset. Empty: keep the tower as
    built."""
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
    num_points: int = 30
    """SasP: points per [SEG] (READ-13B used 60)."""
    t_pos: float = 0.8
    """SasP: cells >= t_pos become positive points (READ-13B used 0.6)."""
    t_neg: float = 0.2
    """SasP: cells in [0, t_neg] become negative points."""
    down_sample: int = 2
    """SasP: the patch-grid similarity map is downsampled by this factor before selecting cells (READ-13B used 1)."""
    answer_style: str = "plain"
    """Answers the model is trained and evaluated with: plain (READ: "Sure, it is [SEG].") | echo (a short query is
    named right before its [SEG]: "Sure, the red circle [SEG]."; the tiny grounding demo). Read by the loader and the
    evaluation prompt, saved with exports."""
    ce_weight: float = 1.0
    """Weight of the next-token cross-entropy."""
    bce_weight: float = 2.0
    """Weight of the per-pixel mask BCE."""
    dice_weight: float = 0.5
    """Weight of the mask Dice loss."""
    dtype: str = "float32"
    """Parameter dtype: float32 | bfloat16."""
    clip_image_size: int = 0
    """Random-init builds only: CLIP input side in px (0: preset value; tiny 112 -> 8x8 patches of 14 px)."""
    sam_image_size: int = 0
    """Random-init builds only: SAM input side in px, a multiple of 16 (0: preset value; tiny 256)."""
    clip_hidden_size: int = 0
    """Random-init builds only: CLIP width (0: preset value; tiny 64); its MLP is twice as wide."""
    clip_num_layers: int = 0
    """Random-init builds only: CLIP blocks (0: preset value; tiny 2). LLaVA reads the second-to-last block, so the
    tiny tower's features come from a single block unless this is raised."""
    llm_hidden_size: int = 0
    """Random-init builds only: LLM hidden size (0: preset value; tiny 128)."""
    llm_num_layers: int = 0
    """Random-init builds only: LLM decoder layers (0: preset value; tiny 2)."""
    llm_init_std: float = 0.0
    """Random-init builds only: standard deviation of the LLM decoder layers' linear weights (0: Hugging Face's
    initializer_range, 0.02, which suits 4096-wide models). 0.05 for the 128-wide tiny LLM shortens its plateau on
    yes/no presence questions in most seeds, but not READ's loop (measured: docs/demo_grounding.md, "Why See
    stays at 50")."""
    projector_init_gain: float = 1.0
    """Random-init builds only: the [SEG] projector's last layer is initialised this many times larger than
    nn.Linear's default, so the [SEG] prompt starts at the scale of SAM's point embeddings (tiny grounding demo: 10)."""

    def __post_init__(self) -> None:
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
        if self.num_points <= 0:
            raise ValueError(f"model.num_points must be > 0, got {self.num_points}")
        if not 0.0 <= self.t_neg < self.t_pos <= 1.0:
            raise ValueError(f"model.t_neg/t_pos must satisfy 0 <= t_neg < t_pos <= 1, got {self.t_neg}/{self.t_pos}")
        if self.down_sample <= 0:
            raise ValueError(f"model.down_sample must be > 0, got {self.down_sample}")
        if self.answer_style not in ANSWER_STYLES:
            raise ValueError(f"model.answer_style must be one of {ANSWER_STYLES}, got {self.answer_style!r}")
        if self.llm_init_std < 0:
            raise ValueError(f"model.llm_init_std must be >= 0 (0 = Hugging Face's default), got {self.llm_init_std}")
        if self.projector_init_gain <= 0:
            raise ValueError(f"model.projector_init_gain must be > 0, got {self.projector_init_gain}")
        for key in ("ce_weight", "bce_weight", "dice_weight"):
            if getattr(self, key) < 0:
                raise ValueError(f"model.{key} must be >= 0, got {getattr(self, key)}")
        for key in ("clip_image_size", "clip_hidden_size", "clip_num_layers", "sam_image_size", "llm_hidden_size",
                    "llm_num_layers"):
            if getattr(self, key) < 0:
                raise ValueError(f"model.{key} must be >= 0 (0 = preset value), got {getattr(self, key)}")
        if self.sam_image_size % 16:
            raise ValueError(f"model.sam_image_size must be a multiple of 16 (SAM patch), got {self.sam_image_size}")
