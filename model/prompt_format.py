"""The prompt format a model is trained and evaluated with, saved beside every export as `prompt_format.json`.

Like a Hugging Face processor, it travels with the weights: the training loader writes conversations with it, and
evaluation and `jobs.predict` read it from the checkpoint folder (`model.export.saved_prompt_format`, the default of
their `prompt_format.*` keys), never from the live model. It holds the conversation template (system prompt, roles,
separators), the image-token layout (how many image tokens replace "<image>") and the answer style. The tokenizer
files beside it carry the [SEG] spacing (tokenizer_config.json); models trained from a READ release also keep READ's
own tokenisation rules (`read_prompt_format.json`, `model.read_release`).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from dataclasses import dataclass

from model.read_prompt import conversation_template

PROMPT_FORMAT_FILE = "prompt_format.json"
ANSWER_STYLES = ("plain", "echo")
"""plain: READ's answers; echo: short queries are named before their [SEG] (pipelines.data.templates)."""


@dataclass(kw_only=True)
class PromptFormat:
    """How a model's conversations are written (prompt_format.*)."""

    answer_style: str = "plain"
    """plain: READ's answers ("Sure, it is [SEG].") | echo: a short query is named right before its [SEG] ("Sure,
    the red circle [SEG]."), so the [SEG] state sits next to the words it grounds."""

    conversation: str = "llava_v1"
    """The conversation template the prompts are written in (`model.read_prompt.TEMPLATES`): llava_v1 (READ's
    training and validation: "...a curious human...") | vicuna_v1 ("...a curious user..."). Both write
    "<system> USER: <image>\\n{question} ASSISTANT: {answer}</s>"."""
    image_tokens: int = 0
    """P: copies of the image token that replace "<image>" (576 for CLIP ViT-L/14-336). 0: the model's count
    ((CLIP image size / patch size)^2); an export records the count it was trained with, and a model that yields
    another count is refused."""

    def __post_init__(self) -> None:
        if self.answer_style not in ANSWER_STYLES:
            raise ValueError(f"prompt_format.answer_style must be one of {ANSWER_STYLES}, got {self.answer_style!r}")
        conversation_template(self.conversation, key="prompt_format.conversation")
        if self.image_tokens < 0:
            raise ValueError(f"prompt_format.image_tokens must be >= 0 (0: the model's count), got "
                             f"{self.image_tokens}")

    def num_image_tokens(self, model_image_tokens: int) -> int:
        """P for a model whose vision tower yields `model_image_tokens` image tokens: `image_tokens` when set (it
        must then match), else the model's.

        Raises:
            ValueError: the format was saved for another image-token count than the model yields.
        """
        if self.image_tokens and self.image_tokens != model_image_tokens:
            raise ValueError(
                f"prompt_format.image_tokens={self.image_tokens} but the model yields {model_image_tokens} image "
                "tokens per image ((CLIP image size / patch size)^2): the prompt format was saved for another "
                "vision tower; pass prompt_format.image_tokens=0 to use the model's count")
        return model_image_tokens

    def for_model(self, model_image_tokens: int) -> "PromptFormat":
        """This format with `image_tokens` resolved for a model (what an export records)."""
        return dataclasses.replace(self, image_tokens=self.num_image_tokens(model_image_tokens))

    def save(self, folder: str | pathlib.Path) -> None:
        """Write `folder/prompt_format.json`."""
        (pathlib.Path(folder) / PROMPT_FORMAT_FILE).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")
