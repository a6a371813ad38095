"""Typed training configuration, composed root of `jobs/train.py`, and the DeepSpeed JSON derived from it.

`TrainConfig` holds the run (name, storage, workers), the optimisation recipe (READ defaults: AdamW lr 3e-4,
betas (0.9, 0.95), weight decay 0, WarmupDecayLR with 100 warm-up steps, gradient clipping 1.0, ZeRO-2,
bf16 on GPU) and the step budget, plus the model (`model/config.py`), data (`pipelines/data/config.py`) and
trainable-parameter policy (`pipelines/train/freeze.py`) sections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from model.config import ReadModelConfig
from model.prompt_format import PromptFormat
from pipelines import storage
from pipelines.data.config import DataConfig
from pipelines.train.freeze import TrainableConfig

PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(kw_only=True)
class TrainConfig:
    """Everything one training run needs; the resolved copy is saved as `<run_dir>/config.yaml`."""

    name: str = MISSING
    """Run name. Outputs go to `<storage_path>/<name>`; re-running with the same name resumes that run."""
    storage_path: str = "runs"
    """Local folder or fsspec URI (s3://..., gs://...) that holds run folders; shared by all nodes on a cluster."""
    shards_root: str = ""
    """Folder or URI holding `<dataset>-<split>/shard-*.tar` shard sets; recipes build `data.streams[i].shards` from
    it with `${shards_root}` interpolation, so one key points a recipe at the data."""
    ray_address: str = ""
    """Ray cluster to join ("auto", "host:port", "ray://..."); empty: start a local cluster (or RAY_ADDRESS)."""
    num_workers: int = 1
    """Ray Train workers (data-parallel ranks), one per GPU when `use_gpu`."""
    use_gpu: bool = False
    """One GPU per worker, NCCL and bf16 (precision=auto); False: CPU workers with gloo."""
    cpus_per_worker: int = 1
    """CPUs Ray reserves per worker (the loader's DataLoader workers run on them)."""

    zero_stage: int = 2
    """DeepSpeed ZeRO stage: 0, 1 or 2 (parameters stay replicated, so rank 0 can export the model)."""
    precision: str = "auto"
    """auto (bf16 on GPU, fp32 on CPU) | fp32 | bf16. fp16 is not supported."""
    lr: float = 3e-4
    """Peak learning rate (READ: 3e-4 from LLaVA/SAM weights, 1e-4 when fine-tuning a released checkpoint)."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    """AdamW betas."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_num_steps: int = 100
    """WarmupDecayLR: linear warm-up steps from 0 to `lr`, then linear decay to 0 at epochs*steps_per_epoch."""
    gradient_clipping: float = 1.0
    """Global gradient-norm clip."""
    torch_adam: bool | None = None
    """Use torch's AdamW instead of DeepSpeed's fused one; None: True on CPU (required there), False on GPU."""
    gradient_accumulation_steps: int = 10
    """Micro-batches per optimizer step."""

    epochs: int = 10
    """Epochs of `steps_per_epoch` optimizer steps (the stream is resampled, so an epoch is a step count)."""
    steps_per_epoch: int = 500
    """Optimizer steps per epoch."""
    max_steps: int = 0
    """Stop after this many optimizer steps (0: epochs*steps_per_epoch). The LR schedule still spans all epochs."""
    checkpoint_every: int = 500
    """Save a DeepSpeed checkpoint through Ray Train every this many optimizer steps (and at the last step)."""
    num_checkpoints_to_keep: int = 2
    """Newest checkpoints Ray Train keeps."""
    checkpoint_frozen_parameters: bool = False
    """Also store frozen weights in checkpoints (False: they are rebuilt from the model config on resume)."""
    max_failures: int = 0
    """Worker-group restarts (from the last checkpoint) Ray Train allows before the run fails."""
    seed: int = 42
    """Seeds model init, dropout and the data stream; the stream is a function of (seed, rank, step)."""
    log_every: int = 10
    """Print the progress line and rewrite metrics.parquet every this many steps."""
    gradient_checkpointing: bool = False
    """Recompute LLM activations in the backward pass (less memory, ~30% slower)."""
    export: bool = True
    """Write `<run_dir>/export` (LoRA merged) at the end, loadable by model.build.load_export."""
    fail_at_step: int = 0
    """Test hook: the last rank kills its process once (marker file in the run dir) after this step; 0: never."""
    task: str = "pipelines.train.task:ReadTask"
    """Import path `module:Class` of the TrainTask that builds the model and the batch stream."""

    required: list[str] = field(default_factory=list)
    """Dotted keys a recipe needs set (non-empty), e.g. [model.llava_path, shards_root]; the job stops naming the first
    empty one. (A YAML `???` cannot mark them: OmegaConf ignores `???` when merging over a typed default.)"""

    model: ReadModelConfig = field(default_factory=ReadModelConfig)
    """The READ model (preset, weights, SasP, loss weights)."""
    prompt_format: PromptFormat = field(default_factory=PromptFormat)
    """How conversations are written (answer style, conversation template, image tokens); saved with the export.
    Defaults to the prompt format of the export named by model.read_checkpoint."""
    data: DataConfig = field(default_factory=DataConfig)
    """The streaming loader (dataset mix, shards, batching)."""
    trainable: TrainableConfig = field(default_factory=TrainableConfig)
    """Which parameters train (READ: LoRA on q/v, lm_head, embeddings, SAM decoder, projection)."""

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(f"name must be a non-empty run name without '/', got {self.name!r}")
        positive = ("num_workers", "cpus_per_worker", "gradient_accumulation_steps",
                    "epochs", "steps_per_epoch", "checkpoint_every", "num_checkpoints_to_keep", "log_every")
        for key in positive:
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)}")
        for key in ("max_steps", "max_failures", "warmup_num_steps", "fail_at_step"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)}")
        if self.zero_stage not in (0, 1, 2):
            raise ValueError(f"zero_stage must be 0, 1 or 2 (stage 3 shards parameters, which export does not "
                             f"gather), got {self.zero_stage}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS} (no fp16), got {self.precision!r}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {list(self.betas)}")
        if self.lr <= 0 or self.weight_decay < 0 or self.gradient_clipping < 0:
            raise ValueError(f"lr must be > 0 and weight_decay, gradient_clipping >= 0; got lr={self.lr}, "
                             f"weight_decay={self.weight_decay}, gradient_clipping={self.gradient_clipping}")
        if self.warmup_num_steps > self.total_steps:
            raise ValueError(f"warmup_num_steps ({self.warmup_num_steps}) exceeds epochs*steps_per_epoch "
                             f"({self.total_steps}); lower it or train longer")
        if self.torch_adam is False and not self.use_gpu:
            raise ValueError("torch_adam=false needs use_gpu=true: DeepSpeed's fused Adam has no CPU kernel")
        for key in self.required:
            value: Any = self
            for part in key.split("."):
                if not hasattr(value, part):
                    raise ValueError(f"required: {key!r} is not a config key")
                value = getattr(value, part)
            if value in ("", None, []):
                raise ValueError(f"{key} must be set for this recipe (it is listed in `required`), e.g. {key}=...")
        if ":" not in self.task:
            raise ValueError(f"task must be an import path 'module:Class', got {self.task!r}")

    @property
    def micro_batch_size_per_gpu(self) -> int:
        """Images per worker per forward/backward: the loader's `data.batch_size` (one source of truth)."""
        return self.data.batch_size

    @property
    def total_steps(self) -> int:
        """Length of the LR schedule: epochs * steps_per_epoch."""
        return self.epochs * self.steps_per_epoch

    @property
    def last_step(self) -> int:
        """The optimizer step this run stops after."""
        return min(self.max_steps, self.total_steps) if self.max_steps else self.total_steps

    @property
    def run_dir(self) -> str:
        """`<storage_path>/<name>`: config.yaml, metrics.parquet, Ray Train checkpoints and export/."""
        return storage.join(self.storage_path, self.name)

    @property
    def bf16(self) -> bool:
        """Whether DeepSpeed trains in bf16 (precision=auto: on GPU only)."""
        return self.precision == "bf16" or (self.precision == "auto" and self.use_gpu)

    def to_deepspeed_dict(self) -> dict[str, Any]:
        """The DeepSpeed JSON for this run (never hand-edited)."""
        torch_adam = (not self.use_gpu) if self.torch_adam is None else self.torch_adam
        return {
            "train_micro_batch_size_per_gpu": self.micro_batch_size_per_gpu,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "gradient_clipping": self.gradient_clipping,
            "zero_optimization": {"stage": self.zero_stage},
            "bf16": {"enabled": self.bf16},
            "fp16": {"enabled": False},
            "optimizer": {
                "type": "AdamW",
                "params": {
                    "lr": self.lr,
                    "betas": list(self.betas),
                    "weight_decay": self.weight_decay,
                    "torch_adam": torch_adam,
                    "adam_w_mode": True,
                },
            },
            "scheduler": {
                "type": "WarmupDecayLR",
                "params": {
                    "total_num_steps": self.total_steps,
                    "warmup_min_lr": 0.0,
                    "warmup_max_lr": self.lr,
                    "warmup_num_steps": self.warmup_num_steps,
                    "warmup_type": "linear",
                },
            },
            "steps_per_print": 10**9,
            "wall_clock_breakdown": False,
        }
