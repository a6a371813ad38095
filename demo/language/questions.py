"""Yes/no presence questions about a synthetic scene, true and false drawn 50/50 so the words carry no cue."""

from __future__ import annotations

import random
from collections.abc import Sequence

from pipelines.synth.palette import COLOURS, SHAPES
from pipelines.synth.scene import SceneObject

KINDS = ("colour", "shape", "pair")
QUESTION = "Is there {phrase} in this image?"


def presence_phrase(rng: random.Random, objects: Sequence[SceneObject], kind: str, present: bool) -> str:
    """A phrase naming something the scene has (`present`) or lacks, e.g. "a red shape", "a star", "a red star".

    Absent colours and shapes are drawn uniformly from the palette's values the scene lacks; half of the absent pairs
    join a colour and a shape the scene has, on different objects (so a pair needs binding, not two lookups).
    """
    colours = sorted({o.colour for o in objects})
    shapes = sorted({o.shape for o in objects})
    pairs = {(o.colour, o.shape) for o in objects}
    if kind == "colour":
        pool = colours if present else [c for c in COLOURS if c not in colours]
        return f"a {rng.choice(pool)} shape"
    if kind == "shape":
        pool = shapes if present else [s for s in SHAPES if s not in shapes]
        return f"a {rng.choice(pool)}"
    if kind != "pair":
        raise ValueError(f"question kind must be one of {KINDS}, got {kind!r}")
    if present:
        colour, shape = rng.choice(sorted(pairs))
        return f"a {colour} {shape}"
    bound = [(c, s) for c in colours for s in shapes if (c, s) not in pairs]
    if bound and rng.random() < 0.5:
        colour, shape = rng.choice(bound)
    else:
        colour, shape = rng.choice([(c, s) for c in COLOURS for s in SHAPES if (c, s) not in pairs])
    return f"a {colour} {shape}"
