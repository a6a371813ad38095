"""Where the read-tiny oracle lives (READ's own checkpoint and outputs, made by READ's code; never edited here):
`$READ_TINY_REF`, default ../shared/reference/read-tiny beside the repository. Tests import the paths from here and
skip their module with `skip_without_oracle()` when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REF = Path(os.environ.get("READ_TINY_REF", Path(__file__).resolve().parents[2] / "shared/reference/read-tiny"))
CKPT = REF / "READ-LLaVA-tiny"
"""The release folder, as READ's merge script saves it."""
CLIP = REF / "clip-vit-tiny-patch14-336"
"""Its CLIP folder (`model.clip_path`)."""
ARCH = REF / "tiny_arch.json"
"""The SAM sizes READ does not record (`model.sam_arch`)."""


def skip_without_oracle(needed: str = "pytorch_model.bin") -> None:
    """Skip the calling test module when the oracle's `CKPT/<needed>` is missing."""
    if not (CKPT / needed).is_file():
        pytest.skip(f"READ oracle not found at {REF} (set READ_TINY_REF)", allow_module_level=True)
