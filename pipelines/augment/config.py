"""Options of the augmentation job (`python -m jobs.augment`), and the rewriter/policy they build."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from pipelines.augment.lm import LMRewriter
from pipelines.augment.proposal import Rewriter
from pipelines.augment.rules import RuleRewriter
from pipelines.augment.variants import VariantPolicy
from schemas.sample import EDIT_TYPES

REWRITERS = ("rules", "lm")


@dataclass(kw_only=True)
class AugmentConfig:
    """Build FP-RefCOCO-style false premises for one split of a REFER-format dataset."""

    dataset: str = MISSING
    """REFER folder name under <root>/refer_seg/ (refcoco, refcoco+, refcocog, refclef, ...)."""
    root: str = MISSING
    """Raw data root holding refer_seg/."""
    split: str = MISSING
    """Ref split to augment (train, val, testA, testB, test)."""
    out: str = MISSING
    """Output folder or URI: shards, manifest.parquet, rejects.parquet, summary.parquet, config.yaml."""
    split_by: str = ""
    """refs(<split_by>).p variant read; "" reads what READ reads (see PreprocessConfig.split_by). The export writes
    refs(<variant READ reads for export_name>).p, e.g. berkeley_exclude_unified for fprefcoco."""
    per_query: int = 1
    """False variants per true expression."""
    edits: list[str] = field(default_factory=lambda: list(EDIT_TYPES))
    """Which elements may be rewritten: subset of object, attribute, relation."""
    edit_weights: dict[str, float] = field(default_factory=dict)
    """Target share of each edit type among the variants, e.g. {object: 1, attribute: 1, relation: 2} (normalised;
    a type in `edits` not named weighs 1; {} weighs all equally). The type is drawn first, by these weights
    corrected for what the image's variants already got (pipelines.augment.mix), among the types the expression
    supports; summary.parquet reports the achieved mix against them."""
    calibration_images: int = 256
    """Images (spread evenly over the split) on which each edit type's valid share is measured before augmenting;
    the type draw divides the weights by these shares so the split's mix approaches the weights
    (pipelines.augment.calibration). 0 draws by the weights alone."""
    seed: int = 0
    """Randomness of each query is drawn from (seed, sample key, query id): same seed -> same output."""
    rewriter: str = "rules"
    """rules (embedded word lists) or lm (a local causal LM at lm_path)."""
    lm_path: str = ""
    """Local transformers causal LM folder (rewriter=lm); nothing is downloaded."""
    lm_max_new_tokens: int = 40
    """LM answer length cap."""
    lm_num_tries: int = 2
    """LM answers per (expression, edit kind): the first greedy, the rest sampled."""
    allow_superlatives: bool = False
    """Accept superlative swaps (largest -> smallest), which usually still name an existing object."""
    max_tries_per_edit: int = 8
    """Candidates validated per (expression, edit kind) before moving on to another kind."""
    num_workers: int = 2
    """Shard tasks in flight on Ray; 0 runs in this process without Ray."""
    ray_address: str = ""
    """Ray cluster to join ("auto", "host:port", "ray://..."); "" starts a local one (or joins RAY_ADDRESS)."""
    shard_max_samples: int = 1000
    """Images per shard at most."""
    shard_max_bytes: int = 1 << 30
    """Estimated bytes per shard at most."""
    on_bad_sample: str = "quarantine"
    """quarantine (record in rejects.parquet and go on) or raise."""
    export_refer: bool = False
    """Also write the result as a REFER-format FP-RefCOCO dataset under export_root."""
    export_root: str = ""
    """Raw root of the export; "" -> <out>/refer (gets refer_seg/<export_name>/ and the images)."""
    export_name: str = ""
    """Dataset folder name of the export; "" -> "fp" + dataset (fprefcoco, fprefcoco+, fprefcocog)."""

    def __post_init__(self) -> None:
        if self.per_query < 1:
            raise ValueError(f"augment.per_query must be >= 1, got {self.per_query}")
        bad = sorted(set(self.edits) - set(EDIT_TYPES))
        if bad or not self.edits:
            raise ValueError(f"augment.edits must be a non-empty subset of {list(EDIT_TYPES)}, got {list(self.edits)}")
        unknown = sorted(set(self.edit_weights) - set(self.edits))
        if unknown or any(w < 0 for w in self.edit_weights.values()):
            raise ValueError(f"augment.edit_weights: keys must be among edits {list(self.edits)} and weights >= 0, "
                             f"got {dict(self.edit_weights)}")
        if sum(self.weights().values()) <= 0:
            raise ValueError(f"augment.edit_weights: at least one edit type needs a positive weight, got "
                             f"{dict(self.edit_weights)}")
        if self.rewriter not in REWRITERS:
            raise ValueError(f"augment.rewriter must be one of {REWRITERS}, got {self.rewriter!r}")
        if self.rewriter == "lm" and not self.lm_path:
            raise ValueError("augment.lm_path is required with rewriter=lm: give a local causal LM folder")
        if self.calibration_images < 0:
            raise ValueError(f"augment.calibration_images must be >= 0, got {self.calibration_images}")
        if self.num_workers < 0:
            raise ValueError(f"augment.num_workers must be >= 0, got {self.num_workers}")
        if self.max_tries_per_edit < 1 or self.lm_num_tries < 1 or self.lm_max_new_tokens < 1:
            raise ValueError("augment.max_tries_per_edit, lm_num_tries and lm_max_new_tokens must be >= 1")
        if self.on_bad_sample not in ("quarantine", "raise"):
            raise ValueError(f"augment.on_bad_sample must be quarantine or raise, got {self.on_bad_sample!r}")

    def weights(self) -> dict[str, float]:
        """Edit type -> weight, for every type in `edits` (1 where `edit_weights` names none)."""
        return {e: float(self.edit_weights.get(e, 1.0)) for e in dict.fromkeys(self.edits)}

    def policy(self) -> VariantPolicy:
        return VariantPolicy(
            edits=tuple(dict.fromkeys(self.edits)),
            per_query=self.per_query,
            seed=self.seed,
            allow_superlatives=self.allow_superlatives,
            max_tries_per_edit=self.max_tries_per_edit,
            weights=tuple(self.weights().items()),
        )

    def build_rewriter(self) -> Rewriter:
        if self.rewriter == "lm":
            return LMRewriter(self.lm_path, max_new_tokens=self.lm_max_new_tokens, num_tries=self.lm_num_tries)
        return RuleRewriter()

    def fingerprint(self) -> str:
        """The options besides the policy that change the output (they go into the shard plan digest)."""
        lm = f"{self.lm_path}|{self.lm_max_new_tokens}|{self.lm_num_tries}" if self.rewriter == "lm" else ""
        return f"rewriter={self.rewriter}|{lm}"
