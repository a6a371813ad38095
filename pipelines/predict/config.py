"""Options of the prediction job (`python -m jobs.predict`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from model.config import ReadModelConfig
from model.prompt_format import PromptFormat
from pipelines import storage

MODES = ("segment", "generate")
PROTOCOLS = ("clean", "read")
"""clean: every request on its own | read: as READ's test script, the generate-mode requests of one image are
left-padded with `<unk>` to the longest of them, and the padding is attended (READ passes no attention mask)."""


@dataclass(kw_only=True)
class PredictConfig:
    """Which checkpoint, which images and queries, what to write."""

    checkpoint: str = ""
    """A READ / LISA / SESAME release folder as published, or our export folder. Empty: build `model` as
    configured (e.g. model.llava_path + model.sam_checkpoint, or a random tiny model)."""
    model: ReadModelConfig = field(default_factory=ReadModelConfig)
    """Model settings; `model.clip_path` / `model.sam_arch` for release folders, `model.dtype`, `model.numerics`
    (release folders default to `read`)."""
    prompt_format: PromptFormat = field(default_factory=PromptFormat)
    """How the model was trained to talk (answer style and conversation template of a prompt built from `query`,
    image tokens); defaults to the checkpoint's prompt_format.json."""
    image: str = ""
    """One image file (any format PIL reads; EXIF orientation applied). Unused with `inputs`."""
    query: str = ""
    """What to segment, in words; the checkpoint's own prompt format builds the conversation (see README)."""
    prompt: str = ""
    """Instead of `query`: a complete conversation in the checkpoint's text format with one `<image>`; it ends after
    "ASSISTANT:" for mode=generate and holds the answer with its [SEG] for mode=segment (teacher-forced)."""
    inputs: str = ""
    """A JSON-lines file, one request per line: {"image": ..., "query" or "prompt": ..., optional "mode", "id"};
    relative image paths are resolved against the file's folder. Runs on Ray actors; resumable."""
    mode: str = "segment"
    """segment: teacher-forced answer with one [SEG] | generate: greedy answer, one mask per generated [SEG]."""
    protocol: str = "clean"
    """clean | read (see PROTOCOLS): `read` reproduces READ's generation inputs for an `inputs` file that holds
    several generate-mode queries of one image."""
    max_new_tokens: int = 512
    """Generation budget per query (READ's test script uses 512); stops at </s>."""
    trace: bool = False
    """Also write traces/<id>.npz: input_ids, seg_positions, similarity, points, point_labels, mask_logits and, in
    generate mode, generated_ids."""
    out: str = MISSING
    """Output folder: masks/, overlays/, predictions.parquet, config.yaml (and traces/ with trace=true)."""
    num_workers: int = 1
    """Ray actors for `inputs`, each holding one model."""
    use_gpu: bool = False
    """Give each worker one GPU (else CPU)."""
    cpus_per_worker: float = 1.0
    """CPUs reserved per worker (also its torch thread count, rounded down, at least 1)."""
    ray_address: str = ""
    """Ray cluster to join for `inputs` ("auto", "host:port"); empty starts a local one."""
    seed: int = 0
    """torch seed set before building the model (random-init builds are then identical on every worker)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.max_new_tokens <= 0:
            raise ValueError(f"max_new_tokens must be > 0, got {self.max_new_tokens}")
        if self.num_workers <= 0:
            raise ValueError(f"num_workers must be > 0, got {self.num_workers}")
        if self.cpus_per_worker <= 0:
            raise ValueError(f"cpus_per_worker must be > 0, got {self.cpus_per_worker}")
        if self.query and self.prompt:
            raise ValueError("give query=... or prompt=..., not both")
        if not self.inputs and not self.image:
            raise ValueError("nothing to predict: give image=<file> with query=/prompt=, or inputs=<file.jsonl>")
        if self.image and not self.inputs and not (self.query or self.prompt):
            raise ValueError(f"image={self.image!r} needs query=\"...\" or prompt=\"...\"")

    def make_local_paths_absolute(self) -> None:
        """Local (non-URI) paths made absolute in place: Ray actors may run in another directory."""
        for key in ("checkpoint", "image", "inputs", "out"):
            setattr(self, key, storage.absolute_local(getattr(self, key)))
        self.model = self.model.map_weight_paths(storage.absolute_local)
