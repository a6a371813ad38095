"""Trainable-parameter policies for READ, driven by config (model code sets no `requires_grad` itself).

* `read` (the READ recipe): LoRA (peft) on the LANGUAGE MODEL's q_proj/v_proj only (never CLIP, projectors or SAM);
  lm_head, token embeddings, SAM mask decoder and the [SEG] projector fully trained; CLIP tower, LLaVA projector,
  SAM image encoder and SAM prompt encoder frozen.
  `modules_to_save` adds fully trained modules (the tiny preset's random SAM: `["sam."]`).
* `full`: every parameter trains (the tiny CPU demo from a random LLaVA).

`merge_lora` folds the adapters back into plain `nn.Linear` layers (before `model.build.save_export`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from torch import nn

POLICIES = ("read", "full")
READ_TRAINABLE_PREFIXES = (
    "llava.lm_head.",
    "llava.model.language_model.embed_tokens.",
    "sam.mask_decoder.",
    "projector.",
)
"""Fully trained modules under the `read` policy (besides the LoRA adapters)."""


@dataclass(kw_only=True)
class TrainableConfig:
    """Which parameters of READ train."""

    policy: str = "read"
    """read (LoRA on the LLM + lm_head, embeddings, SAM decoder, projector) | full (everything; tiny demo)."""
    lora_r: int = 8
    """LoRA rank (read policy)."""
    lora_alpha: int = 16
    """LoRA alpha; the adapter is scaled by alpha / r."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA input."""
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    """Linear layer names inside the language model that get adapters."""
    modules_to_save: list[str] = field(default_factory=list)
    """read policy: parameter-name prefixes that also train fully (as peft's modules_to_save), e.g. ["sam."] for the
    tiny preset, whose SAM starts random (READ freezes SAM's encoders because they are pretrained)."""

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"trainable.policy must be one of {POLICIES}, got {self.policy!r}")
        if self.lora_r <= 0 or self.lora_alpha <= 0:
            raise ValueError(f"trainable.lora_r and lora_alpha must be > 0, got {self.lora_r}/{self.lora_alpha}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"trainable.lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.lora_target_modules:
            raise ValueError("trainable.lora_target_modules must name at least one module, e.g. [q_proj, v_proj]")
        if self.modules_to_save and self.policy != "read":
            raise ValueError("trainable.modules_to_save adds to the read policy; with policy=full everything trains "
                             "already (drop modules_to_save or set trainable.policy=read)")
        if any(not prefix for prefix in self.modules_to_save):
            raise ValueError("trainable.modules_to_save holds an empty prefix, which would train every parameter; "
                             "name modules such as sam. or sam.image_encoder.")


def apply_trainable_policy(model: nn.Module, cfg: TrainableConfig | str) -> nn.Module:
    """Set `requires_grad` on `model` (a model.read.READ) per `cfg`; `read` also injects LoRA. Returns `model`."""
    if isinstance(cfg, str):
        cfg = TrainableConfig(policy=cfg)
    if cfg.policy == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    language_model = model.llava.model.language_model
    if not any(isinstance(m, LoraLayer) for m in language_model.modules()):
        lora = LoraConfig(
            r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
            target_modules=list(cfg.lora_target_modules), bias="none",
        )
        inject_adapter_in_model(lora, language_model)  # the LM only: CLIP's q_proj/v_proj stay untouched
    trained = READ_TRAINABLE_PREFIXES + tuple(cfg.modules_to_save)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(trained) or "lora_" in name)
    unmatched = [prefix for prefix in cfg.modules_to_save
                 if not any(name.startswith(prefix) for name, _ in model.named_parameters())]
    if unmatched:
        raise ValueError(f"trainable.modules_to_save: no parameter name starts with {unmatched} "
                         "(prefixes look like sam. or llava.model.vision_tower.)")
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Merge every LoRA adapter into its base layer and put the base layer back in place. Returns `model`."""
    lora_names = [name for name, m in model.named_modules() if isinstance(m, LoraLayer)]
    for name in lora_names:
        layer = model.get_submodule(name)
        layer.merge()
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, layer.get_base_layer())
    return model


def trainable_parameter_names(model: nn.Module) -> list[str]:
    """Names of the parameters that currently require grad (for logs and tests)."""
    return [n for n, p in model.named_parameters() if p.requires_grad]
