"""Options of the evaluation job (`python -m jobs.evaluate`)."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import pathlib
from dataclasses import asdict, dataclass, field
from typing import Any

from omegaconf import MISSING

from model.config import ReadModelConfig, upgrade_flat_keys
from model.export import CONFIG_FILE, is_export_dir, saved_prompt_format
from model.prompt_format import PromptFormat
from model.read_release import is_read_release_dir
from pipelines import storage
from pipelines.evaluate.metrics import GENERATE, TEACHER_FORCED
from schemas.results import QUERY_TABLE_VERSION

MODES = ("auto", TEACHER_FORCED, GENERATE)

EXPORT_DEFAULT_KEYS = ("preset", "seg_hidden_position", "sasp", "dtype")
"""model.* settings an evaluation takes from the export it evaluates unless the user sets them."""


def export_model_defaults(checkpoint: str) -> dict[str, Any]:
    """{key: value} of EXPORT_DEFAULT_KEYS as the export at `checkpoint` was trained with (`sasp` as a dict);
    {} when `checkpoint` is empty or not an export folder (the job then reports that itself)."""
    if not checkpoint or not is_export_dir(checkpoint):
        return {}
    meta = json.loads(pathlib.Path(checkpoint, CONFIG_FILE).read_text())
    trained = upgrade_flat_keys(meta.get("read_config", {}))
    return {key: trained[key] for key in EXPORT_DEFAULT_KEYS if key in trained}


WEIGHT_INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def checkpoint_hash(checkpoint: str) -> str:
    """A content hash identifying a checkpoint folder's weights: sha256 of its weights index when it has one
    (sharded releases), else of its single weights file (beyond 1 GiB: of its size, first and last 64 MiB);
    "" for "preset:..." labels, URIs and folders without weights."""
    folder = pathlib.Path(checkpoint) if checkpoint and "://" not in checkpoint else None
    if folder is None or not folder.is_dir():
        return ""
    for name in WEIGHT_INDEX_FILES + WEIGHT_FILES:
        path = folder / name
        if path.is_file():
            digest = hashlib.sha256()
            size = path.stat().st_size
            with path.open("rb") as f:
                if size > 1 << 30:
                    digest.update(str(size).encode() + f.read(64 << 20))
                    f.seek(size - (64 << 20))
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            return f"{name}:{digest.hexdigest()}"
    return ""


def checkpoint_model_defaults(checkpoint: str) -> dict[str, Any]:
    """model.* defaults a checkpoint brings: an export's training settings (`export_model_defaults`); for a READ /
    LISA / SESAME release folder READ's numerics (so that it gives READ's points and masks); {} otherwise."""
    if checkpoint and is_read_release_dir(checkpoint):
        return {"numerics": "read"}
    return export_model_defaults(checkpoint)


def checkpoint_defaults(checkpoint: str) -> dict[str, Any]:
    """The config layer a checkpoint brings to evaluation and prediction: {"model": checkpoint_model_defaults,
    "prompt_format": the prompt format saved with it}, empty parts left out."""
    layer = {"model": checkpoint_model_defaults(checkpoint), "prompt_format": saved_prompt_format(checkpoint)}
    return {key: value for key, value in layer.items() if value}


@dataclass(kw_only=True)
class EvaluateConfig:
    """What to evaluate, with which model, where to write, and on how many workers."""

    checkpoint: str = ""
    """Our export folder (model.build.save_export) or a READ / LISA / SESAME release folder as published (CLIP from
    model.clip_path or its mm_vision_tower). Empty: build `model` as configured (random init for tiny, or the
    released weights named by model.llava_path / sam_checkpoint / read_checkpoint)."""
    protocol: str = "clean"
    """Evaluation protocol: clean | read (configs/protocols/<name>.yaml) or a protocol YAML: which queries are
    scored and the exact prompts (docs/protocols.md). `read` computes what READ's scripts compute."""
    model: ReadModelConfig = field(default_factory=ReadModelConfig)
    """Model preset and weights; an export's preset must equal model.preset. With an export `checkpoint`, the
    preset and runtime settings (SasP, [SEG] position, dtype) default to the export's (`export_model_defaults`)."""
    prompt_format: PromptFormat = field(default_factory=PromptFormat)
    """How the model was trained to talk (answer style, conversation template, image tokens); defaults to the
    checkpoint's prompt_format.json."""
    data: list[str] = MISSING
    """Shard folders (searched recursively for *.tar) or .tar files, e.g. [runs/shards/refcoco/val]."""
    out: str = MISSING
    """Output folder (local path or URI): parts/, queries/, summary.parquet, config.yaml."""
    num_workers: int = 1
    """Ray actors, each holding one model; each pulls the next shard when it is free."""
    use_gpu: bool = False
    """Give each worker one GPU (else CPU)."""
    cpus_per_worker: float = 1.0
    """CPUs reserved per worker (also its torch thread count, rounded down, at least 1)."""
    ray_address: str = ""
    """Ray cluster to join ("auto", "host:port"); empty starts a local one (or joins RAY_ADDRESS)."""
    mode: str = "auto"
    """auto (generate for datasets matching generate_datasets, else teacher_forced) | teacher_forced | generate."""
    generate_datasets: list[str] = field(default_factory=lambda: ["fp*", "r-*", "rref*"])
    """Case-insensitive fnmatch patterns of dataset names evaluated in generation mode when mode=auto."""
    max_new_tokens: int = 0
    """Generation mode: greedy decoding budget per query; 0: the protocol's (read: 512, READ's test script), else
    32."""
    max_queries_per_forward: int = 16
    """Teacher-forced mode: queries of one image scored in one forward (bounds memory)."""
    seed: int = 0
    """torch seed set before building the model, so random-init builds (tiny tests, benches) are identical on every
    worker."""
    run_id: str = ""
    """Names the run in every row; empty: derived from the settings (same settings -> same id)."""

    def __post_init__(self) -> None:
        if self.num_workers <= 0:
            raise ValueError(f"num_workers must be > 0, got {self.num_workers}")
        if self.cpus_per_worker <= 0:
            raise ValueError(f"cpus_per_worker must be > 0, got {self.cpus_per_worker}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0 (0: the protocol's), got {self.max_new_tokens}")
        if self.max_queries_per_forward <= 0:
            raise ValueError(f"max_queries_per_forward must be > 0, got {self.max_queries_per_forward}")
        if isinstance(self.data, str):
            self.data = [self.data]

    def resolved_max_new_tokens(self, protocol_budget: int) -> int:
        """`max_new_tokens`, else the protocol's budget, else 32."""
        return self.max_new_tokens or protocol_budget or 32

    def make_local_paths_absolute(self) -> None:
        """Make the local (non-URI) checkpoint, weight, data and output paths absolute in place, as the driver sees
        them: evaluation workers may run in another directory."""
        self.checkpoint = storage.absolute_local(self.checkpoint)
        self.model = self.model.map_weight_paths(storage.absolute_local)
        self.data = [storage.absolute_local(path) for path in self.data]
        self.out = storage.absolute_local(self.out)

    def mode_of(self, dataset: str) -> str:
        """The evaluation mode of a dataset."""
        if self.mode != "auto":
            return self.mode
        name = dataset.lower()
        if any(fnmatch.fnmatchcase(name, p.lower()) for p in self.generate_datasets):
            return GENERATE
        return TEACHER_FORCED

    def fingerprint(self, shard_urls: list[str]) -> dict[str, Any]:
        """What the scores depend on (not the worker count, cluster or output place); parts must share it."""
        return {
            "run_id": self.run_id,
            "checkpoint": self.checkpoint,
            "model": asdict(self.model),
            "prompt_format": asdict(self.prompt_format),
            "shards": shard_urls,
            "mode": self.mode,
            "protocol": self.protocol,
            "generate_datasets": list(self.generate_datasets),
            "max_new_tokens": self.max_new_tokens,
            "max_queries_per_forward": self.max_queries_per_forward,
            "seed": self.seed,
            "query_table_version": QUERY_TABLE_VERSION,  # parts of an older layout are not reused
        }

    def checkpoint_label(self) -> str:
        """The `checkpoint` column: the export folder, else the released checkpoint, else "preset:<name>"."""
        return self.checkpoint or self.model.read_checkpoint or f"preset:{self.model.preset}"

    def resolved_run_id(self, shard_urls: list[str]) -> str:
        """`run_id`, or a hash of the fingerprint so 1 and N workers name the run identically."""
        if self.run_id:
            return self.run_id
        text = json.dumps(self.fingerprint(shard_urls), sort_keys=True)
        return "eval-" + hashlib.sha1(text.encode()).hexdigest()[:12]
