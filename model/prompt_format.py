"""The prompt format a model is trained and evaluated with, saved beside every export as `prompt_format.json`.

Like a Hugging Face processor, it travels with the weights: the training loader writes conversations with it, and
evaluation and `jobs.predict` read it from the checkpoint folder (`model.export.saved_prompt_format`, the default of
their `prompt_format.*` keys), never from the live model. The rest of the format is saved beside it too: the tokenizer files (with the [SEG]
spacing in tokenizer_config.json), the image-token count in the LLaVA config, and for models trained from a READ
release READ's own rules (`read_prompt_format.json`, `model.read_release`).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from dataclasses import dataclass

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
