"""Configuration of the end-to-end demo (`make demo`: python -m demo.jobs.demo [--config demo/configs/demo.yaml])."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(kw_only=True)
class DemoConfig:
    """Synthesise -> preprocess -> augment -> [pretrain the vision tower] -> [pretrain the LLaVA, in stages] -> evaluate
    untrained -> train -> evaluate trained -> compare -> draw."""

    out: str = "runs/demo"
    """Everything goes under this folder (raw/, shards/, [vision/, language/,] eval-untrained/, train/, eval/, viz/,
    baselines.parquet)."""
    seed: int = 0
    """Seed of the synthetic data and the augmentation."""
    ray_address: str = ""
    """Ray cluster to use; empty starts a local one for the whole demo (and stops it at the end)."""
    num_cpus: int = 2
    """CPUs of the local Ray cluster the demo starts."""
    num_workers: int = 2
    """Ray workers of the preprocessing, augmentation and evaluation jobs."""
    shard_max_samples: int = 50
    """Images per shard of the preprocessing and augmentation jobs (several shards, so 2 ranks read disjoint ones)."""
    synth: list[str] = field(default_factory=list)
    """Extra `key=value` options of jobs.synth (image size, image counts, ...)."""
    preprocess: list[str] = field(
        default_factory=lambda: ["refcoco:train", "refcoco:val", "R-refcoco:train", "llava_vqa:train", "fprefcoco:val"]
    )
    """`dataset:split` pairs turned into shards under `<out>/shards/<dataset>-<split>/`."""
    augment: list[str] = field(default_factory=lambda: ["refcoco:train"])
    """`dataset:split` pairs given false-premise variants, written to `<out>/shards/<dataset>_fp-<split>/`."""
    pretrain_vision: bool = False
    """Pretrain the tiny model's vision tower first (demo.jobs.pretrain_vision into `<out>/vision/`; the stand-in for
    CLIP's pretraining) and start every evaluated and trained model from it (model.tiny.vision_checkpoint)."""
    vision: list[str] = field(default_factory=list)
    """Extra `key=value` options of demo.jobs.pretrain_vision (steps, batch_size, ...)."""
    pretrain_language: bool = False
    """Pretrain the tiny model's LLaVA first (captions, yes/no presence questions, [SEG] pointing and/or READ's answers;
    demo.jobs.pretrain_language into `<out>/language/`, or one run per entry of `language_stages`; the stand-in for
    LLaVA's pretraining) and start every evaluated and trained model from it (model.llava_path). With pretrain_vision
    too, the (first) language stage starts from the pretrained tower."""
    language: list[str] = field(default_factory=list)
    """Extra `key=value` options of demo.jobs.pretrain_language (steps, objectives, kinds, seed, ...); with
    `language_stages`, the options every stage shares."""
    language_stages: list[list[str]] = field(default_factory=list)
    """A curriculum of demo.jobs.pretrain_language runs, each a list of its own `key=value` options (after
    `language`'s): stage k (from 1) writes `<out>/language/stage-<k>/` and starts from stage k-1's llava/; READ starts
    from the last one's. Empty: one run into `<out>/language/`."""
    eval_data: list[str] = field(default_factory=lambda: ["refcoco-val", "fprefcoco-val"])
    """Shard sets (folder names under `<out>/shards`) every evaluation and the baseline score."""
    train_configs: list[str] = field(default_factory=lambda: ["configs/train_tiny.yaml"])
    """The training recipe YAML file(s), merged in order (a later file's lists replace earlier ones); the demo points
    `shards_root` at `<out>/shards`."""
    train: list[str] = field(default_factory=list)
    """Extra `key=value` overrides of the training recipe (steps, lr, ...)."""
    eval_every: int = 0
    """> 0: train in stages of this many optimizer steps (each resumes the run), evaluating the export after each,
    and write `<out>/curve.parquet` (cIoU per query type against training wall time). 0: one training stage."""
    goal_dataset: str = "refcoco"
    """The split whose cIoU ratio (trained / untrained) the demo reports against its goal."""
    goal_split: str = "val"
    goal_ciou_ratio: float = 5.0
    """Goal: trained cIoU >= this many times the untrained cIoU on goal_dataset/goal_split."""
    see_dataset: str = "fprefcoco"
    """The generation-mode (false-premise) dataset whose See the demo reports."""
    grounding_margin: float = 0.0
    """> 0 (with eval_every): stop training at the first stage whose cIoU on goal_dataset beats the all-objects
    baseline by this margin (0.10 = 10 points) while See on see_dataset >= see_goal. 0: train every step."""
    see_goal: float = 0.85
    """See needed for the grounding goal."""
    num_panels: int = 6
    """Visualisation panels written to `<out>/viz/` (worst and best queries of the trained model)."""

    def __post_init__(self) -> None:
        for key in ("preprocess", "augment"):
            for item in getattr(self, key):
                if item.count(":") != 1:
                    raise ValueError(f"demo.{key}: entries are 'dataset:split', got {item!r}")
        if self.grounding_margin and not self.eval_every:
            raise ValueError("grounding_margin needs eval_every > 0 (the goal is checked after each stage)")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0, got {self.eval_every}")
        if self.language_stages and not self.pretrain_language:
            raise ValueError("demo.language_stages is set but pretrain_language is false: set pretrain_language=true "
                             "or drop the stages")
        if any(not stage for stage in self.language_stages):
            raise ValueError("demo.language_stages: every stage needs at least one key=value option (an empty stage "
                             "would repeat the previous one)")
        if self.num_workers <= 0 or self.num_cpus <= 0:
            raise ValueError(f"num_workers and num_cpus must be > 0, got {self.num_workers}, {self.num_cpus}")
