"""The demo profiles in demo/configs/ hand every stage options its own config accepts, so a typo in a 45-minute profile
is caught here and not minutes into the run: the training options (over the profile's recipe files), the tower and
LLaVA pretraining options of every language stage (with the model overrides the demo passes them), and the synthetic
dataset options."""

from __future__ import annotations

import pathlib

import pytest

from demo.config import DemoConfig
from demo.language import LanguagePretrainConfig
from demo.vision import VisionPretrainConfig
from jobs._config import load_config
from pipelines.synth import SynthConfig
from pipelines.train.config import TrainConfig

REPO = pathlib.Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("profile", ["demo.yaml", "demo_grounding.yaml"])
def test_every_stage_accepts_the_profile_options(profile):
    cfg = load_config(DemoConfig, ["--config", str(REPO / "demo" / "configs" / profile)])
    recipe = [arg for path in cfg.train_configs for arg in ("--config", str(REPO / path))]
    train = load_config(TrainConfig, [*recipe, "name=train", *cfg.train])
    model = [arg for arg in cfg.train if arg.startswith("model.")]
    load_config(SynthConfig, ["out=x", *cfg.synth])
    if cfg.pretrain_vision:
        load_config(VisionPretrainConfig, ["out=x", *model, *cfg.vision])
    for stage in (cfg.language_stages or [[]]) if cfg.pretrain_language else []:
        language = load_config(LanguagePretrainConfig, ["out=x", f"num_cpus={cfg.num_cpus}", *model, *cfg.language,
                                                        *stage])
        assert language.model.preset == train.model.preset == "tiny"

