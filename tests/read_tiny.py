"""Where the read-tiny oracle lives (READ's own checkpoint and outputs, made by READ's code; never edited here):
`$READ_TINY_REF`, default ../shared/reference/read-tiny beside the repository. Tests import the paths from here and
skip their module with `skip_without_oracle()` when it is absent."""

from __future__ import annotations

import os
import re
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


def match_template(templates: list[str], text: str) -> tuple[int, str]:
    """(index, class_name) of the template that formats to `text`."""
    for i, t in enumerate(templates):
        pattern = re.escape(t).replace(re.escape("{class_name}"), "(.+?)").replace(re.escape("{gt_name}"), "(.+?)")
        m = re.fullmatch(pattern, text, flags=re.S)
        if m:
            return i, (m.group(1) if m.groups() else "")
    raise AssertionError(f"no template formats to {text!r}")


def split_prompt(prompt: str) -> tuple[str, str | None]:
    """(question with `<image>`, answer or None) of one of READ's single-turn prompts."""
    question = prompt.split("USER: ", 1)[1].split(" ASSISTANT:", 1)[0].replace("<im_start><image><im_end>", "<image>")
    answer = prompt.split(" ASSISTANT:", 1)[1].strip().removesuffix("</s>") or None
    return question, answer
