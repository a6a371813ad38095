"""The DeepSpeed engine built from the derived config, in one process (gloo, world size 1): optimizer, LR schedule,
frozen parameters, and a save/load round trip that continues bit-for-bit."""

from __future__ import annotations

import os

import pytest
import torch

from pipelines.data.config import DataConfig
from pipelines.train.config import TrainConfig
from pipelines.train.engine import create_engine, current_lr, parseable_arch_list
from tests.fixtures.train import StandInModel, synthetic_batch


def config() -> TrainConfig:
    return TrainConfig(name="unit", lr=0.01, warmup_num_steps=4, epochs=1, steps_per_epoch=12,
                       gradient_accumulation_steps=2, data=DataConfig(batch_size=2))


def run_steps(engine, gen: torch.Generator, n: int) -> list[float]:
    losses = []
    for _ in range(n * engine.gradient_accumulation_steps()):
        out = engine(**synthetic_batch(gen, num_images=2).model_inputs())
        engine.backward(out.loss)
        engine.step()
        losses.append(float(out.loss))
    return losses


def test_engine_follows_the_derived_optimizer_and_schedule(one_rank_process_group):
    torch.manual_seed(0)
    model = StandInModel()
    engine = create_engine(model, config().to_deepspeed_dict())
    group = engine.optimizer.param_groups[0]
    assert tuple(group["betas"]) == (0.9, 0.95) and group["weight_decay"] == 0.0
    assert engine.gradient_clipping() == 1.0 and engine.zero_optimization_stage() == 2
    trained = {id(p) for g in engine.optimizer.param_groups for p in g["params"]}
    assert all(id(p) not in trained for p in model.frozen.parameters())  # only requires_grad params are optimised
    gen, lrs = torch.Generator().manual_seed(1), []
    for _ in range(12):
        lrs.append(current_lr(engine))
        run_steps(engine, gen, 1)
    # DeepSpeed's WarmupDecayLR: the scheduler steps after each update from iteration -1, so updates 1 and 2 both run
    # at 0; then linear warm-up to lr at update 6 (4 warm-up steps), then linear decay towards 0 at
    # epochs * steps_per_epoch = 12 scheduler iterations.
    assert lrs[:6] == pytest.approx([0.0, 0.0, 0.0025, 0.005, 0.0075, 0.01])
    assert all(a > b for a, b in zip(lrs[5:], lrs[6:]))
    assert lrs[-1] == pytest.approx(0.01 * (12 - 10) / (12 - 4))
    assert engine.global_steps == 12


def test_checkpoint_round_trip_continues_identically(one_rank_process_group, tmp_path):
    torch.manual_seed(0)
    engine = create_engine(StandInModel(), config().to_deepspeed_dict())
    gen = torch.Generator().manual_seed(2)
    run_steps(engine, gen, 3)
    engine.save_checkpoint(str(tmp_path), tag="t", client_state={"step": 3}, exclude_frozen_parameters=True)
    state = gen.get_state()
    expected = run_steps(engine, gen, 3)

    torch.manual_seed(0)  # frozen weights are rebuilt from the seed, trained ones come from the checkpoint
    fresh = create_engine(StandInModel(), config().to_deepspeed_dict())
    _, client = fresh.load_checkpoint(str(tmp_path), tag="t", load_module_strict=False)
    assert client["step"] == 3 and fresh.global_steps == 3
    assert run_steps(fresh, torch.Generator().set_state(state), 3) == expected


def test_a_policy_that_trains_nothing_is_refused(one_rank_process_group):
    model = StandInModel().requires_grad_(False)
    with pytest.raises(ValueError, match="trainable"):
        create_engine(model, config().to_deepspeed_dict())


@pytest.mark.parametrize("value, parseable", [("9.0a", "9.0"), ("8.0;9.0a+PTX 10.0f", "8.0;9.0+PTX 10.0"),
                                              ("7.5 8.6+PTX", "7.5 8.6+PTX")])
def test_arch_suffixes_are_dropped_for_deepspeed(value, parseable):
    assert parseable_arch_list(value) == parseable


def test_the_arch_list_is_rewritten_only_while_deepspeed_initialises(one_rank_process_group, monkeypatch):
    import deepspeed

    seen = []
    real = deepspeed.initialize

    def spy(**kwargs):
        seen.append(os.environ["TORCH_CUDA_ARCH_LIST"])
        return real(**kwargs)

    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "9.0a")
    monkeypatch.setattr(deepspeed, "initialize", spy)
    create_engine(StandInModel(), config().to_deepspeed_dict())
    assert seen == ["9.0"] and os.environ["TORCH_CUDA_ARCH_LIST"] == "9.0a"
