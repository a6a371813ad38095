"""The LM rewriter: a local `transformers` causal LM proposes the rewrite; nothing it says is trusted.

The model is prompted to rewrite one element of a given kind and to answer in a fixed format:

    EDIT: <object|attribute|relation>
    FALSE: <the rewritten expression>

`parse_answer` turns the text into a Proposal or a reject ("lm_malformed", "lm_bad_edit_type"); the caller then runs
the same `validation.check_candidate` as for the rule rewriter. Models load from a local directory only
(`local_files_only=True`); nothing is downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from random import Random

from pipelines.augment.context import ImageContext
from pipelines.augment.proposal import Proposal

_GUIDE = {
    "object": "Replace the object noun with one of these, which are NOT in the image: {absent}.",
    "attribute": "Replace one attribute word (a colour, size, material, pattern, ...) with another of the same kind.",
    "relation": "Replace one spatial relation word with its opposite (left/right, above/below, front/behind, ...), "
                "or an ordinal (second -> fifth), so that no object of the image fits the result.",
}
_EXAMPLE = (
    "Expression: the white dog on the left\n"
    "EDIT: attribute\n"
    "FALSE: the black dog on the left\n"
)
_EDIT_LINE = re.compile(r"^[ \t]*EDIT:[ \t]*(\S+)[ \t]*$", re.MULTILINE)
_FALSE_LINE = re.compile(r"^[ \t]*FALSE:[ \t]*(.*?)[ \t\r]*$", re.MULTILINE)


def build_prompt(text: str, edit: str, ctx: ImageContext) -> str:
    """The instruction for rewriting one `edit` element of `text` into a false premise for the image `ctx`."""
    absent = ", ".join(ctx.absent[:20]) or "(none)"
    present = ", ".join(sorted(ctx.present)) or "(none)"
    return (
        "Rewrite a referring expression so that it describes something that is NOT in the image. "
        "Change exactly one element and keep every other word.\n"
        f"Objects in the image: {present}.\n"
        f"{_GUIDE[edit].format(absent=absent)}{_attribute_hint(ctx) if edit == 'attribute' else ''}\n"
        "Answer in exactly this format:\nEDIT: <object|attribute|relation>\nFALSE: <rewritten expression>\n\n"
        f"Example:\n{_EXAMPLE}\n"
        f"Expression: {text}\n"
        f"EDIT: {edit}\n"
        "FALSE:"
    )


def _attribute_hint(ctx: ImageContext) -> str:
    """The prompt's list of allowed attribute values, e.g. ' Use a value that is NOT in the image: colour: orange,
    purple.', for the kinds the dataset annotates (`ImageContext.attribute_problem`); "" when it annotates none."""
    allowed = {kind: [v for v in sorted(values) if ctx.attribute_problem(kind, v) is None]
               for kind, values in sorted(ctx.dataset_values.items())}
    listed = "; ".join(f"{kind}: {', '.join(values)}" for kind, values in allowed.items() if values)
    return f" Use a value that is NOT in the image: {listed}." if listed else ""


def parse_answer(answer: str, edit: str) -> Proposal:
    """The model's answer -> Proposal. `edit` is the kind asked for; the prompt ends with "EDIT: <edit>\\nFALSE:",
    so an answer that starts directly with the expression is read as FALSE for that edit.

    Malformed (no EDIT line, an empty, over-long or unprintable FALSE text) -> reason "lm_malformed"; a stated EDIT
    other than the one asked for -> "lm_bad_edit_type". Only the first EDIT and FALSE lines count.
    """
    if _FALSE_LINE.search(answer) is None:
        answer = f"EDIT: {edit}\nFALSE: {answer.lstrip(' ')}"
    edit_match, false_match = _EDIT_LINE.search(answer), _FALSE_LINE.search(answer)
    if edit_match is None or false_match is None:
        return Proposal(edit=edit, reason="lm_malformed", detail=answer[:200])
    stated = edit_match.group(1).strip().lower().strip(".,:;")
    if stated != edit:
        return Proposal(edit=edit, reason="lm_bad_edit_type", detail=f"asked {edit}, got {stated!r}")
    false_text = false_match.group(1).strip().strip("\"'`").strip()
    if not false_text or len(false_text) > 300 or "\ufffd" in false_text or not false_text.isprintable():
        return Proposal(edit=edit, reason="lm_malformed", detail=answer[:200])
    return Proposal(edit=edit, text=false_text)


class LMRewriter:
    """Proposals from a local causal LM: a greedy answer first, then `num_tries - 1` sampled ones.

    Args:
        path: a local directory holding a transformers causal LM and its tokenizer (save_pretrained layout).
        max_new_tokens: answer length cap.
        num_tries: answers generated per (expression, edit).
        device: torch device string.
    """

    name = "lm"

    def __init__(self, path: str, *, max_new_tokens: int = 40, num_tries: int = 2, device: str = "cpu") -> None:
        self.path, self.max_new_tokens, self.num_tries, self.device = path, max_new_tokens, num_tries, device
        self._model = None
        self._tokenizer = None

    def __getstate__(self) -> dict:
        # Ship the path to Ray workers, not the weights; each worker loads its own copy on first use.
        return {**self.__dict__, "_model": None, "_tokenizer": None}

    def _load(self) -> None:
        import os

        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not os.path.isdir(self.path):
            raise ValueError(f"augment.lm_path: {self.path!r} is not a local directory; give a saved causal LM folder")
        self._tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        self._model = AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True).to(self.device).eval()

    def generate(self, prompt: str, *, sample_seed: int | None) -> str:
        """The model's continuation of `prompt` (new tokens only). Greedy when `sample_seed` is None."""
        import torch

        if self._model is None:
            self._load()
        tok = self._tokenizer
        ids = tok(prompt, return_tensors="pt").to(self.device)
        kwargs = {"do_sample": False}
        if sample_seed is not None:
            torch.manual_seed(sample_seed)
            kwargs = {"do_sample": True, "temperature": 0.8, "top_p": 0.95}
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        with torch.no_grad():
            out = self._model.generate(**ids, max_new_tokens=self.max_new_tokens, pad_token_id=pad, **kwargs)
        new_tokens = out[0, ids["input_ids"].shape[1] :]
        return tok.decode(new_tokens, skip_special_tokens=True)

    def propose(self, text: str, edit: str, ctx: ImageContext, rng: Random) -> Iterator[Proposal]:
        prompt = build_prompt(text, edit, ctx)
        for attempt in range(self.num_tries):
            answer = self.generate(prompt, sample_seed=None if attempt == 0 else rng.getrandbits(31))
            yield parse_answer(answer.split("\n\n")[0], edit)
