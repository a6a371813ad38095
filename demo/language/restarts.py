"""Restarts of a stage that has not left its plateau: the rule, and each attempt's draw of training scenes.

Whether the tiny LLM leaves the constant-answer plateau of a yes/no lookup depends on the draw of scenes and on the
first steps: from one pointing LLaVA, shape presence sat at the constant answer with one draw and reached 94% after
1,250 steps with another; from another, the full lr knocked colours onto the constant answer too on four draws, where
half the lr learned both (docs/demo_grounding.md, "Restarts of the presence stage"). So a stage checks its held-out
metrics once, at `cfg.restart_step`, and an attempt still below `cfg.restart_below` there starts over from the weights
the stage began with, on a new draw, at `cfg.restart_lr_scale` times the lr."""

from __future__ import annotations

import math
import random

import numpy as np

from demo.language.config import LanguagePretrainConfig, unreached

STREAMS = {"presence": 0, "pointing": 2, "caption": 4, "lookup": 6}
"""Training draw -> its stream number (odd numbers draw the held-out sets, which every attempt shares)."""


def attempt_streams(cfg: LanguagePretrainConfig, attempt: int) -> dict[str, tuple[np.random.Generator,
                                                                                 random.Random]]:
    """Each training draw's (scene generator, phrase generator) for `attempt`: attempt 0 draws what a run without
    restarts draws; attempt k > 0 draws a sequence of its own."""
    streams = {}
    for name, j in STREAMS.items():
        if attempt == 0:
            streams[name] = (np.random.default_rng([cfg.seed, j]),
                             random.Random(cfg.seed if j == 0 else cfg.seed * 1000 + j))
        else:
            streams[name] = (np.random.default_rng([cfg.seed, j, attempt]), random.Random(f"{cfg.seed}/{j}/{attempt}"))
    return streams


def stalled(cfg: LanguagePretrainConfig, row: dict, attempt: int) -> list[str]:
    """The metrics of `cfg.restart_below` that evaluation `row` of `attempt` is below when it is the one at
    `cfg.restart_step` and a restart is left (NaN counts as below); [] otherwise, and the attempt trains on."""
    if not cfg.restart_step or row["step"] != cfg.restart_step or attempt >= cfg.max_restarts:
        return []
    return unreached(row, cfg.restart_below)


def restart_lines(cfg: LanguagePretrainConfig, rows: list[dict]) -> list[str]:
    """One line per restart of a run's metrics `rows`: which attempt stalled, on which metrics, and their values."""
    lines = []
    for row in rows:
        if below := stalled(cfg, row, row.get("attempt", 0)):
            values = ", ".join(f"{m} {100 * row.get(m, math.nan):.1f}% < {100 * cfg.restart_below[m]:.0f}%"
                               for m in below)
            lines.append(f"attempt {row['attempt']} was still on its plateau at step {row['step']} ({values}); "
                         f"attempt {row['attempt'] + 1} started over from the first weights on a new draw at lr "
                         f"{cfg.lr * cfg.restart_lr_scale:g}")
    return lines
