"""`demo.jobs.pretrain_language` configuration (one structured config; YAML presets in configs/, dotlist overrides)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from demo.language.questions import KINDS
from model.config import ReadModelConfig, TinyConfig
from model.prompt_format import PromptFormat

OBJECTIVES = ("caption", "presence", "lookup", "pointing", "answers")
BEST_METRICS = {"acc": "presence", "lookup_acc": "lookup", "point_auc": "pointing", "answer_see": "answers"}
"""`keep_best` choices: a held-out metric (higher is better) -> the objective that must be trained to report it."""
TARGETS = {"target_accuracy": "acc", "target_see": "answer_see"}
"""Stop-rule keys -> the held-out metric each one reads (an objective of BEST_METRICS must report it)."""


def unreached(row: dict, floors: dict[str, float]) -> list[str]:
    """The metrics of `floors` (held-out metric -> the value to reach) that evaluation `row` is below; a NaN or
    missing metric never reaches. The stop rule (`targets()`) and the restart rule (`restart_below`) both read it."""
    return [metric for metric, floor in floors.items() if not row.get(metric, math.nan) >= floor]


@dataclass(kw_only=True)
class LanguagePretrainConfig:
    """Pretrain the tiny LLaVA (tower, projector, LLM) to caption a scene, to answer "Is there {phrase} in this image?"
    with yes or no, to point its [SEG] similarity map at the object a segmentation request names, and/or to answer
    those requests as READ does."""

    out: str = "runs/language"
    """Output folder: llava/ (a Hugging Face LLaVA folder for model.llava_path), metrics.parquet, config.yaml."""
    model: ReadModelConfig = field(default_factory=lambda: ReadModelConfig(tiny=TinyConfig(llm_init_std=0.05)))
    """The READ model whose LLaVA is pretrained; only the tiny preset (real presets load LLaVA from llava_path).
    llm_init_std 0.05: the random LLM leaves its plateau sooner (docs/demo_grounding.md, "Why See stays at 50").
    `model.llava_path` set to the llava/ folder of an earlier run of this job continues from it: a curriculum, one
    stage per run."""
    prompt_format: PromptFormat = field(default_factory=PromptFormat)
    """How READ's conversations answer ("pointing" and "answers" objectives): pass the same
    prompt_format.answer_style as the READ training that follows."""
    objectives: list[str] = field(default_factory=lambda: ["presence"])
    """What the LLaVA learns, summed: "caption" (LLaVA's first stage: the scene's objects named from left to right,
    demo/language/captions.py), "presence" (yes/no questions of `kinds`), "lookup" ("What colour is the
    star?" answered with its colour, demo/language/lookups.py), "pointing" (in READ's own segmentation
    conversations, the [SEG] similarity map SasP reads puts its mass on the queried object's patches) and/or
    "answers" (next-token CE of those conversations' answers, READ's CE; demo/language/pointing.py)."""
    false_premise_rate: float = 0.3
    """With "answers": the share of conversations that ask for a false premise, answered with READ's corrections."""
    kinds: list[str] = field(default_factory=lambda: ["colour"])
    """Question kinds, cycled within a batch: colour ("a red shape"), shape ("a star"), pair ("a red star")."""
    steps: int = 2500
    """Optimizer steps; every step draws `batch_size` new scenes, so nothing is seen twice."""
    batch_size: int = 16
    lr: float = 1.0e-3
    """AdamW peak learning rate: linear warmup over `warmup_steps`, then linear decay to 0 at `steps`."""
    warmup_steps: int = 100
    freeze_vision_tower: bool = False
    """Keep the CLIP tower as built or loaded (`model.tiny.vision_checkpoint`), as LLaVA-1.5 and READ freeze CLIP;
    train the projector and LLM only. With a tower pretrained per patch (`demo.jobs.pretrain_vision`) the LLM then learns
    shape presence, which it does not while the tower trains along (docs/demo_grounding.md, "Why See stays at 50")."""
    target_accuracy: float = 0.0
    """Stop at the first evaluation whose held-out yes/no accuracy (all kinds) reaches this; 0: train all `steps`.
    The random LLM leaves its plateau after a seed- and thread-dependent number of steps; the job warns when the
    last evaluation is below the target."""
    target_see: float = 0.0
    """Stop at the first evaluation whose held-out greedy See of READ's answers (`answer_see`) reaches this; 0: train
    all `steps`. The answers' decision settles after a seed-dependent number of steps (about 2,000 to 4,500 from the
    same curriculum), so a stage with a long `steps` budget and this target spends the time only where it is needed.
    With both targets set, training stops when both are reached; `steps` still sets the learning-rate schedule."""
    keep_best: str = ""
    """A held-out metric of BEST_METRICS ("answer_see", "acc", "point_auc", "lookup_acc"): the LLaVA returned and
    written is the one of the evaluation where it was highest (the first, on ties), as Hugging Face's
    load_best_model_at_end; "": the LLaVA after the last step. The answers' greedy See swings between evaluations
    while the decision settles (docs/demo_grounding.md, "Why See stays at 50")."""
    restart_step: int = 0
    """The evaluation step (a multiple of `eval_every`, below `steps`) at which an attempt that has not left its
    plateau starts over: when a held-out metric of `restart_below` is below its value there, the LLaVA goes back to the
    weights the run started from and trains again on another draw of scenes at `lr * restart_lr_scale`, at most
    `max_restarts` times (the last attempt trains on whatever it reaches). Whether the tiny LLM leaves the constant
    yes/no answer depends on the draw and on the first steps' lr (docs/demo_grounding.md, "Restarts of the
    presence stage"). 0: never restart."""
    restart_below: dict[str, float] = field(default_factory=dict)
    """With `restart_step`: held-out metric -> the value it must reach by then, e.g. {acc_colour: 0.75, acc_shape:
    0.75}; the metrics `keep_best` takes, and `acc_<kind>` of each question kind."""
    max_restarts: int = 3
    restart_lr_scale: float = 0.5
    """A restarted attempt trains at `lr` times this, a gentler start: from some pointing LLaVAs the first steps at
    the full lr knock the LLM onto the constant answer for colours too, on every draw, where half the lr learns both
    (docs/demo_grounding.md, "Restarts of the presence stage")."""
    image_size: list[int] = field(default_factory=lambda: [64, 64])
    """Scene [width, height] in px, as the synthetic datasets (synth.image_size)."""
    min_objects: int = 2
    max_objects: int = 4
    noise: float = 6.0
    """Background noise half-range, as synth.noise."""
    eval_questions: int = 384
    """Held-out questions (and as many pointing prompts), fresh scenes of fixed seeds of their own, scored every
    `eval_every` steps."""
    eval_every: int = 250
    seed: int = 1
    num_cpus: int = 1
    """CPUs of the one Ray task that trains (and torch threads inside it)."""
    ray_address: str = ""
    """"" starts a local Ray cluster; "auto" or host:port joins one (ray job submit sets RAY_ADDRESS)."""

    def targets(self) -> dict[str, float]:
        """The stop rule's set targets: held-out metric -> the value to reach ({} trains all `steps`)."""
        return {metric: getattr(self, key) for key, metric in TARGETS.items() if getattr(self, key)}

    def scene_options(self) -> dict:
        """Keyword arguments of `pipelines.synth.scene.sample_scene` for this run's fresh scenes."""
        return {"width": self.image_size[0], "height": self.image_size[1], "min_objects": self.min_objects,
                "max_objects": self.max_objects, "noise": self.noise}

    def __post_init__(self) -> None:
        if self.model.preset != "tiny":
            raise ValueError(f"model.preset={self.model.preset!r}: language pretraining stands in for LLaVA's "
                             "pretraining in the tiny preset only; the real presets load LLaVA from model.llava_path")
        if not self.objectives or any(o not in OBJECTIVES for o in self.objectives):
            raise ValueError(f"objectives must be a non-empty list of {OBJECTIVES}, got {list(self.objectives)}")
        for key, metric in TARGETS.items():
            if getattr(self, key) and BEST_METRICS[metric] not in self.objectives:
                raise ValueError(f"{key} stops on {metric}: add {BEST_METRICS[metric]!r} to objectives or set {key} "
                                 "to 0")
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"{key} must be in [0, 1] (0: no target), got {getattr(self, key)}")
        if self.keep_best and BEST_METRICS.get(self.keep_best) not in self.objectives:
            needs = (f"add {BEST_METRICS[self.keep_best]!r} to objectives" if self.keep_best in BEST_METRICS
                     else f"use one of {sorted(BEST_METRICS)}")
            raise ValueError(f"keep_best={self.keep_best!r} is not reported by objectives {list(self.objectives)}: "
                             f"{needs}, or set keep_best to ''")
        if not 0.0 <= self.false_premise_rate < 1.0:
            raise ValueError(f"false_premise_rate must be in [0, 1), got {self.false_premise_rate}")
        if not self.kinds or any(k not in KINDS for k in self.kinds):
            raise ValueError(f"kinds must be a non-empty list of {KINDS}, got {list(self.kinds)}")
        for key in ("steps", "batch_size", "eval_questions", "eval_every", "num_cpus"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)}")
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(f"warmup_steps must be in [0, steps), got {self.warmup_steps} (steps={self.steps})")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if len(self.image_size) != 2 or min(self.image_size) < 32:
            raise ValueError(f"image_size must be [width, height] with sides >= 32, got {list(self.image_size)}")
        if not 2 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 2 <= min_objects <= max_objects, got {self.min_objects}/{self.max_objects}")
        self._check_restarts()

    def restart_metrics(self) -> list[str]:
        """The held-out metrics this run reports that `restart_below` may name."""
        metrics = [m for m, objective in BEST_METRICS.items() if objective in self.objectives]
        return metrics + ([f"acc_{k}" for k in self.kinds] if "presence" in self.objectives else [])

    def _check_restarts(self) -> None:
        if not 0.0 < self.restart_lr_scale <= 1.0:
            raise ValueError(f"restart_lr_scale must be in (0, 1], got {self.restart_lr_scale}")
        if self.restart_step < 0 or self.max_restarts < 0:
            raise ValueError(f"restart_step and max_restarts must be >= 0, got {self.restart_step} / "
                             f"{self.max_restarts}")
        if not self.restart_step:
            if self.restart_below:
                raise ValueError(f"restart_below={dict(self.restart_below)} needs restart_step, the evaluation step "
                                 "that checks it; set restart_step or restart_below={}")
            return
        if self.restart_step % self.eval_every or self.restart_step >= self.steps:
            raise ValueError(f"restart_step={self.restart_step} must be a multiple of eval_every={self.eval_every} "
                             f"below steps={self.steps}: the restart rule reads that evaluation")
        if not self.restart_below:
            raise ValueError("restart_step is set but restart_below is empty: name the held-out metrics to reach, "
                             "e.g. restart_below={acc_shape: 0.75}, or set restart_step=0")
        known = self.restart_metrics()
        for metric, floor in self.restart_below.items():
            if metric not in known:
                raise ValueError(f"restart_below names {metric!r}, which objectives {list(self.objectives)} and kinds "
                                 f"{list(self.kinds)} do not report; use one of {known}")
            if not 0.0 <= floor <= 1.0:
                raise ValueError(f"restart_below.{metric} must be in [0, 1], got {floor}")
