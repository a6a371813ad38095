"""`demo.jobs.pretrain_vision` configuration (one structured config; YAML presets in configs/, dotlist overrides)."""

from __future__ import annotations

from dataclasses import dataclass, field

from model.config import ReadModelConfig


@dataclass(kw_only=True)
class VisionPretrainConfig:
    """Pretrain the tiny preset's CLIP tower to name, patch by patch, the colour and shape of the object there."""

    out: str = "runs/vision"
    """Output folder: vision_tower.safetensors, metrics.parquet, config.yaml."""
    model: ReadModelConfig = field(default_factory=ReadModelConfig)
    """The READ model whose tower is pretrained; only the tiny preset (real presets load CLIP from llava_path)."""
    steps: int = 6000
    """Optimizer steps; every step draws `batch_size` new scenes, so nothing is seen twice."""
    batch_size: int = 32
    lr: float = 1.0e-3
    """AdamW learning rate (constant)."""
    image_size: list[int] = field(default_factory=lambda: [64, 64])
    """Scene [width, height] in px, as the synthetic datasets (synth.image_size)."""
    min_objects: int = 2
    max_objects: int = 4
    noise: float = 6.0
    """Background noise half-range, as synth.noise."""
    min_cover: float = 0.2
    """A patch is labelled with the object covering most of it when that object covers at least this fraction of
    the patch; otherwise it is background."""
    eval_scenes: int = 500
    """Held-out scenes (a fixed seed of their own) scored every `eval_every` steps."""
    eval_every: int = 500
    seed: int = 0
    num_cpus: int = 1
    """CPUs of the one Ray task that trains (and torch threads inside it)."""
    ray_address: str = ""
    """"" starts a local Ray cluster; "auto" or host:port joins one (ray job submit sets RAY_ADDRESS)."""

    def __post_init__(self) -> None:
        if self.model.preset != "tiny":
            raise ValueError(f"model.preset={self.model.preset!r}: vision pretraining stands in for CLIP's pretraining "
                             "in the tiny preset only; the real presets load CLIP from model.llava_path")
        for key in ("steps", "batch_size", "eval_scenes", "eval_every", "num_cpus"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if len(self.image_size) != 2 or self.image_size[0] != self.image_size[1] or self.image_size[0] < 32:
            raise ValueError(f"image_size must be square, [side, side] with side >= 32 (the patch labels follow "
                             f"CLIP's grid on a square image), got {list(self.image_size)}")
        if not 0.0 < self.min_cover <= 1.0:
            raise ValueError(f"min_cover must be in (0, 1], got {self.min_cover}")
        if not 2 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 2 <= min_objects <= max_objects, got {self.min_objects}/{self.max_objects}")
