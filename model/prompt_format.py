"""The prompt format a model is trained and evaluated with, saved beside every export as `prompt_format.json`.

Like a Hugging Face processor, it travels with the weights: the training loader writes conversations with it, and
evaluation and `jobs.predict` read it from the checkpoint folder (as the default of their `prompt_format.*` keys),
never from the live model. The rest of the format is saved beside it too: the tokenizer files (with the [SEG]
spacing in tokenizer_config.json), the image-token count in the LLaVA config, and for models trained from a READ
release READ's own rules (`read_prompt_format.json`, `model.read_release`).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from dataclasses import dataclass
from typing import Any

PROMPT_FORMAT_FILE = "prompt_format.json"
ANSWER_STYLES = ("plain", "echo")
"""plain: READ's answers; echo: short queries are named before their [SEG] (pipelines.data.templates)."""


@dataclass(kw_only=True)
class PromptFormat:
    """How a model's conversations are written (prompt_format.*)."""

    answer_style: str = "plain"
    """plain: READ's answers ("Sure, it is [SEG].") | echo: a short query is named right before its [SEG] ("Sure,
    the red circle [SEG]."), so the [SEG] state sits next to the words it grounds."""

    def __post_init__(self) -> None:
        if self.answer_style not in ANSWER_STYLES:
            raise ValueError(f"prompt_format.answer_style must be one of {ANSWER_STYLES}, got {self.answer_style!r}")

    def save(self, folder: str | pathlib.Path) -> None:
        """Write `folder/prompt_format.json`."""
        (pathlib.Path(folder) / PROMPT_FORMAT_FILE).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")


def saved_prompt_format(folder: str | pathlib.Path) -> dict[str, Any]:
    """The prompt format saved in a checkpoint folder, as {key: value}: `prompt_format.json`, else the
    `answer_style` that exports of format version 1 kept in read_config.json; {} for folders with neither (release
    folders, random-init labels)."""
    path = pathlib.Path(folder) if folder and "://" not in str(folder) else None
    if path is None or not path.is_dir():
        return {}
    saved = path / PROMPT_FORMAT_FILE
    if saved.is_file():
        values = json.loads(saved.read_text())
        known = {f.name for f in dataclasses.fields(PromptFormat)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{saved}: unknown prompt format keys {unknown} (written by a newer readseg?)")
        return values
    legacy = path / "read_config.json"
    if legacy.is_file():
        style = json.loads(legacy.read_text()).get("read_config", {}).get("answer_style")
        return {"answer_style": style} if style else {}
    return {}


def load_prompt_format(folder: str | pathlib.Path) -> PromptFormat:
    """The `PromptFormat` saved in `folder` (`saved_prompt_format`), READ's plain answers when none is."""
    return PromptFormat(**saved_prompt_format(folder))
