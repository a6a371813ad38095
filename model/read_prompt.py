"""READ's prompt format, read from a READ checkpoint folder: token ids exactly as READ builds them.

READ (github.com/rui-qian/READ, original LLaVA code, transformers 4.31) tokenises with the SLOW `LlamaTokenizer`
(`legacy=True`, forced by READ's `init_READ_model`), whose rules are not those of the transformers-5 LLaMA tokenizer
(which puts a metaspace token in front of an added token). `ReadPromptFormat` reimplements those rules on the
checkpoint's own sentencepiece model (`tokenizer.model`) and added tokens (`added_tokens.json`), so that a released
READ checkpoint sees the ids it was trained on. The rules (checked token for token against READ's outputs, see
tests/conformance/test_read_tokens.py):

* Text -> ids (4.31 `tokenizer(text).input_ids`): the text is split on the "no split" tokens (the added tokens
  `[SEG]`, `<im_start>`, `<im_end>` and the special tokens `<s>`, `</s>`, `<unk>`), longest match first. Around an
  added token that is not a special token, whitespace is stripped on both sides (`"<im_end>\\nWhat"` -> `<im_end>`,
  `▁What`; `"is [SEG]."` -> `▁is`, `[SEG]`, `▁.`); around `<s>`, `</s>`, `<unk>` nothing is stripped (their
  `AddedToken` has lstrip = rstrip = False), so `"a</s>USER"` -> `▁a`, `</s>`, `▁US`, `ER`. Chunks that stripping
  leaves empty are dropped; every other text chunk is encoded by sentencepiece on its own (dummy prefix `▁`, so a
  trailing space is a separate `▁` token, id 29871 for LLaMA). BOS is prepended once, no EOS is appended.
* Prompt -> ids (`tokenizer_image_token`): the prompt is split on `<image>`, each chunk is encoded as above, the
  BOS of every chunk but the first is dropped and each `<image>` becomes one placeholder id (-200 in READ,
  `IMAGE_TOKEN_INDEX`), which the model later replaces by the 576 projected CLIP features.
* Prompt text: conversation templates `llava_v1` (training, validation: "...curious human...") and `vicuna_v1`
  (test_read.py generation: "...curious user..."), both `system + " " + "USER: " + q + " " + "ASSISTANT: " + a +
  "</s>"`, a generation prompt ending at "ASSISTANT:"; the first question starts with "<image>\\n" and, with
  `mm_use_im_start_end`, every "<image>" is written "<im_start><image><im_end>" (`replace_image_tokens`).
* Training labels (`collate_fn_train` -> `handle_conversation_specifics`): see `ReadPromptFormat.labels`.
* Decoding (`tokenizer.decode(ids, skip_special_tokens=True)`): see `ReadPromptFormat.decode`.

Pure Python + sentencepiece (+ torch for the collated batch); no transformers.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import sentencepiece as spm
import torch

IMAGE_TOKEN = "<image>"
IM_START_TOKEN, IM_END_TOKEN = "<im_start>", "<im_end>"
SEG_TOKEN = "[SEG]"
IMAGE_TOKEN_INDEX = -200
"""READ's placeholder id for one image (LLaVA `IMAGE_TOKEN_INDEX`)."""
IGNORE_INDEX = -100
"""Label value that cross-entropy ignores."""
TRUNCATE_MARGIN = 255
"""`collate_fn_train` truncates batches to `model_max_length - 255` tokens."""


@dataclasses.dataclass(frozen=True)
class ConversationTemplate:
    """A LLaVA `SeparatorStyle.TWO` conversation template (the only style READ's v1 templates use)."""

    name: str
    system: str
    roles: tuple[str, str] = ("USER", "ASSISTANT")
    sep: str = " "
    sep2: str = "</s>"

    @property
    def answer_sep(self) -> str:
        """What READ's label masking splits a round at: `sep + roles[1] + ": "` (" ASSISTANT: ")."""
        return f"{self.sep}{self.roles[1]}: "

    def render(self, turns: Sequence[tuple[str, str | None]]) -> str:
        """LLaVA `Conversation.get_prompt()` for the messages [USER q1, ASSISTANT a1, USER q2, ...].

        A falsy message (None or "") renders as "ROLE:" with nothing after it, as LLaVA does; only the last answer
        may be missing (a generation prompt)."""
        out = self.system + self.sep
        messages: list[tuple[str, str | None]] = []
        for i, (question, answer) in enumerate(turns):
            if not answer and i != len(turns) - 1:
                raise ValueError(f"turn {i} has no answer but is not the last turn")
            messages += [(self.roles[0], question), (self.roles[1], answer)]
        for i, (role, message) in enumerate(messages):
            out += f"{role}: {message}{(self.sep, self.sep2)[i % 2]}" if message else f"{role}:"
        return out


LLAVA_V1 = ConversationTemplate(
    name="llava_v1",
    system="A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions.",
)
"""READ training and validation (`train_read.py` sets `default_conversation = conv_llava_v1`)."""
VICUNA_V1 = ConversationTemplate(
    name="vicuna_v1",
    system="A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions.",
)
"""READ generation (`test_read.py` keeps LLaVA's `default_conversation = conv_vicuna_v1`)."""
TEMPLATES = {t.name: t for t in (LLAVA_V1, VICUNA_V1)}


def conversation_template(name: str, *, key: str = "conversation") -> ConversationTemplate:
    """The template called `name` (`TEMPLATES`); ValueError naming `key` and the choices for any other name."""
    if name not in TEMPLATES:
        raise ValueError(f"{key} must be one of {tuple(TEMPLATES)}, got {name!r}")
    return TEMPLATES[name]


def expand_image_tokens(text: str) -> str:
    """READ's `replace_image_tokens` (mm_use_im_start_end): every "<image>" -> "<im_start><image><im_end>"."""
    return text.replace(IMAGE_TOKEN, IM_START_TOKEN + IMAGE_TOKEN + IM_END_TOKEN)


def _template(template: str | ConversationTemplate) -> ConversationTemplate:
    if isinstance(template, ConversationTemplate):
        return template
    if template in TEMPLATES:
        return TEMPLATES[template]
    # A system prompt given as text: the v1 layout with that system prompt.
    return dataclasses.replace(LLAVA_V1, name="custom", system=template)


@dataclasses.dataclass(frozen=True)
class _NoSplitToken:
    content: str
    token_id: int
    lstrip: bool  # strip whitespace at the end of the text on its left
    rstrip: bool  # strip whitespace at the start of the text on its right


class ReadPromptFormat:
    """READ's tokenisation of prompts, built from a checkpoint folder's tokenizer files (READ/LLaVA layout:
    sentencepiece `tokenizer.model` + `added_tokens.json`, optional `special_tokens_map.json`,
    `tokenizer_config.json`, `config.json`).

    Attributes:
        folder: the checkpoint folder.
        seg_token_id, im_start_id, im_end_id: ids of "[SEG]", "<im_start>", "<im_end>" (the latter two None when
            the folder has no such tokens and `use_im_start_end` is False).
        bos_id, eos_id, unk_id, pad_id: special ids; pad is `<unk>`, as READ sets (`tokenizer.pad_token =
            tokenizer.unk_token`).
        image_token_index: placeholder id of one `<image>` in `encode` (READ: -200).
        use_im_start_end: whether prompts wrap `<image>` in `<im_start>`/`<im_end>` (config.json
            `mm_use_im_start_end`; READ's released models: True).
        add_tokens: tokens the folder lacks, added after its vocabulary in this order, as READ's training adds
            `[SEG]` (then `<im_start>`, `<im_end>`) to a base LLaVA's tokenizer.
        model_max_length: READ's `--model_max_length` (only used by `collate_train`'s truncation and label check).
        vocab_size: sentencepiece pieces + added tokens (`len(tokenizer)`).
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        image_token_index: int = IMAGE_TOKEN_INDEX,
        model_max_length: int | None = None,
        use_im_start_end: bool | None = None,
        add_tokens: Sequence[str] = (),
    ) -> None:
        self.folder = Path(folder)
        model_file = self.folder / "tokenizer.model"
        if not model_file.is_file():
            raise ValueError(
                f"{self.folder}: no tokenizer.model. ReadPromptFormat needs READ's tokenizer files (the LLaMA "
                f"sentencepiece model tokenizer.model + added_tokens.json with [SEG], <im_start>, <im_end>), as READ's "
                f"merge_lora_weights_and_save_hf_model.py saves them next to the weights; copy them from the READ "
                f"release (or from the base LLaVA folder plus READ's added_tokens.json) into {self.folder}."
            )
        self.sp = spm.SentencePieceProcessor(model_file=str(model_file))
        config = _read_json(self.folder / "tokenizer_config.json")
        special_map = _read_json(self.folder / "special_tokens_map.json")
        model_config = _read_json(self.folder / "config.json")

        self.added_tokens = self._read_added_tokens(config)
        for token in add_tokens:  # READ's `tokenizer.add_tokens(...)` on a base LLaVA: the next free ids, in order
            if token not in self.added_tokens:
                self.added_tokens[token] = max([self.sp.get_piece_size(), *(i + 1 for i in self.added_tokens.values())])
        self.image_token_index = int(image_token_index)
        self.model_max_length = int(model_max_length or config.get("model_max_length") or 2048)
        self.add_bos_token = bool(config.get("add_bos_token", True))
        self.add_eos_token = bool(config.get("add_eos_token", False))
        # transformers 4.31 defaults clean_up_tokenization_spaces to True when the config does not say.
        self.clean_up_tokenization_spaces = bool(config.get("clean_up_tokenization_spaces", True))

        # Special tokens: special_tokens_map.json overrides tokenizer_config.json, LLaMA defaults otherwise.
        specials: dict[str, Any] = {}
        for key, default in (("bos_token", "<s>"), ("eos_token", "</s>"), ("unk_token", "<unk>")):
            specials[key] = special_map.get(key, config.get(key, default))
        specials["pad_token"] = special_map.get("pad_token", config.get("pad_token"))
        additional = special_map.get("additional_special_tokens", config.get("additional_special_tokens")) or []
        self.bos_token, self.eos_token, self.unk_token = (
            _content(specials[k]) for k in ("bos_token", "eos_token", "unk_token")
        )
        self.bos_id, self.eos_id, self.unk_id = (
            self.token_to_id(t) for t in (self.bos_token, self.eos_token, self.unk_token)
        )
        self.pad_token, self.pad_id = self.unk_token, self.unk_id  # READ: tokenizer.pad_token = tokenizer.unk_token
        special_entries = [specials[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")] + list(additional)
        special_entries = [e for e in special_entries if e is not None]
        self.special_tokens = list(dict.fromkeys(_content(e) for e in special_entries))
        self.special_ids = sorted({self.token_to_id(t) for t in self.special_tokens})

        if SEG_TOKEN not in self.added_tokens:
            raise ValueError(
                f"{self.folder}: the tokenizer has no {SEG_TOKEN} token (added_tokens.json holds "
                f"{sorted(self.added_tokens)}). This is not a READ checkpoint folder, or its tokenizer files were "
                f"not saved with the model: READ adds [SEG] with tokenizer.add_tokens('[SEG]') before training and "
                f"saves it in added_tokens.json; its id must be the row of the checkpoint's embedding that was "
                f"trained for [SEG], so copy the added_tokens.json of the checkpoint's own release, do not invent one."
            )
        self.seg_token_id = self.added_tokens[SEG_TOKEN]
        self.im_start_id = self.added_tokens.get(IM_START_TOKEN)
        self.im_end_id = self.added_tokens.get(IM_END_TOKEN)
        if use_im_start_end is None:
            use_im_start_end = bool(model_config.get("mm_use_im_start_end", self.im_start_id is not None))
        self.use_im_start_end = use_im_start_end
        if use_im_start_end and (self.im_start_id is None or self.im_end_id is None):
            raise ValueError(
                f"{self.folder}: mm_use_im_start_end is set but added_tokens.json lacks {IM_START_TOKEN} / "
                f"{IM_END_TOKEN}; copy the added_tokens.json saved with this checkpoint (READ: 32001 / 32002), "
                f"or pass use_im_start_end=False for a checkpoint trained without them."
            )
        self.vocab_size = max([self.sp.get_piece_size(), *(i + 1 for i in self.added_tokens.values())])

        # "No split" tokens (4.31 `unique_no_split_tokens`): added tokens and special tokens. Whitespace around
        # them is stripped on both sides unless the token is a special token given as an AddedToken, whose own
        # lstrip / rstrip flags then apply (False for LLaMA's <s>, </s>, <unk>).
        flags: dict[str, tuple[bool, bool]] = {}
        for entry in special_entries:
            if isinstance(entry, dict):
                flags[_content(entry)] = (bool(entry.get("lstrip", False)), bool(entry.get("rstrip", False)))
        self._no_split: dict[str, _NoSplitToken] = {}
        for content in [*self.added_tokens, *self.special_tokens]:
            lstrip, rstrip = flags.get(content, (True, True))
            self._no_split[content] = _NoSplitToken(content, self.token_to_id(content), lstrip, rstrip)
        self._split_re = re.compile(
            "(" + "|".join(re.escape(t) for t in sorted(self._no_split, key=len, reverse=True)) + ")"
        )
        self._id_to_added = {i: t for t, i in self.added_tokens.items()}

    @classmethod
    def from_pretrained(cls, folder: str | Path, **kwargs: Any) -> "ReadPromptFormat":
        """Same as the constructor (named like the transformers loaders)."""
        return cls(folder, **kwargs)

    def _read_added_tokens(self, config: dict[str, Any]) -> dict[str, int]:
        added = _read_json(self.folder / "added_tokens.json")
        if not added:  # transformers >= 4.34 layout: tokenizer_config.json "added_tokens_decoder"
            for idx, entry in (config.get("added_tokens_decoder") or {}).items():
                if int(idx) >= self.sp.get_piece_size():
                    added[_content(entry)] = int(idx)
        ids = sorted(added.values())
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self.folder}: added_tokens.json gives one id to several tokens: {added}")
        return {str(t): int(i) for t, i in added.items()}

    # ---------------------------------------------------------------- tokens

    def __len__(self) -> int:
        return self.vocab_size

    def token_to_id(self, token: str) -> int:
        """Added token id, else the sentencepiece piece id (`<unk>` for unknown pieces)."""
        if token in self.added_tokens:
            return self.added_tokens[token]
        return int(self.sp.piece_to_id(token))

    def id_to_token(self, token_id: int) -> str:
        if token_id in self._id_to_added:
            return self._id_to_added[token_id]
        if token_id == self.image_token_index:
            return IMAGE_TOKEN
        if not 0 <= token_id < self.sp.get_piece_size():
            raise ValueError(f"token id {token_id} is outside the vocabulary of {self.folder} ({self.vocab_size})")
        return self.sp.id_to_piece(token_id)

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        return [self.id_to_token(int(i)) for i in ids]

    def split_text(self, text: str) -> list[str]:
        """4.31 `tokenize()`'s first step: the text split on no-split tokens, whitespace stripped next to them,
        empty chunks dropped. Returns the chunks (a no-split token is a chunk of its own)."""
        chunks = [c for c in self._split_re.split(text) if c != ""]
        for i, chunk in enumerate(chunks):
            token = self._no_split.get(chunk)
            if token is None:
                continue
            # In place, left to right, as 4.31 does (a text chunk between two tokens is stripped by both).
            if token.rstrip and i + 1 < len(chunks) and chunks[i + 1] not in self._no_split:
                chunks[i + 1] = chunks[i + 1].lstrip()
            if token.lstrip and i > 0 and chunks[i - 1] not in self._no_split:
                chunks[i - 1] = chunks[i - 1].rstrip()
        return [c for c in chunks if c]

    def tokenize(self, text: str) -> list[str]:
        """Token strings of `text` (4.31 slow `LlamaTokenizer.tokenize`, legacy=True), no BOS."""
        out: list[str] = []
        for chunk in self.split_text(text):
            out += [chunk] if chunk in self._no_split else self.sp.encode(chunk, out_type=str)
        return out

    def encode_text(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """4.31 `tokenizer(text).input_ids`: no `<image>` handling (a literal "<image>" is ordinary text)."""
        ids: list[int] = []
        for chunk in self.split_text(text):
            token = self._no_split.get(chunk)
            ids += [token.token_id] if token is not None else self.sp.encode(chunk)
        if add_special_tokens:
            ids = [self.bos_id] * self.add_bos_token + ids + [self.eos_id] * self.add_eos_token
        return ids

    def encode(self, prompt: str) -> list[int]:
        """READ's `tokenizer_image_token(prompt, tokenizer)`: ids of a prompt whose `<image>` become
        `image_token_index` (one placeholder per image). The prompt is used as given: expand `<image>` to
        `<im_start><image><im_end>` first (`build_prompt` does)."""
        chunks = [self.encode_text(chunk) for chunk in prompt.split(IMAGE_TOKEN)]
        offset = int(bool(chunks and chunks[0] and chunks[0][0] == self.bos_id))
        ids: list[int] = chunks[0][:offset]
        for i, chunk in enumerate(chunks):
            if i > 0:
                ids.append(self.image_token_index)
            ids += chunk[offset:]
        return ids

    def seg_positions(self, ids: Sequence[int]) -> list[int]:
        """Positions of `[SEG]` in `ids`."""
        return [i for i, t in enumerate(ids) if int(t) == self.seg_token_id]

    # ---------------------------------------------------------------- prompts

    def build_prompt(
        self,
        system: str | ConversationTemplate,
        turns: Sequence[tuple[str, str | None]],
        *,
        image: bool = True,
    ) -> str:
        """The prompt string READ builds for a conversation.

        Args:
            system: "llava_v1" (training / validation), "vicuna_v1" (test_read.py generation), a
                `ConversationTemplate`, or a system prompt text (v1 roles and separators).
            turns: (question, answer) pairs; the last answer None (or "") for a generation prompt ending at
                "ASSISTANT:". Questions and answers are taken as they are (READ's templates end questions with
                "?"/"." and answers with "[SEG]." etc.).
            image: prepend "<image>\\n" to the first question (READ's datasets do) unless it already holds
                "<image>".

        Returns:
            the prompt, with `<image>` wrapped in `<im_start>`/`<im_end>` when `use_im_start_end`.
        """
        turns = list(turns)
        if image and turns and IMAGE_TOKEN not in turns[0][0]:
            turns[0] = (f"{IMAGE_TOKEN}\n{turns[0][0]}", turns[0][1])
        prompt = _template(system).render(turns)
        return expand_image_tokens(prompt) if self.use_im_start_end else prompt

    # ---------------------------------------------------------------- training labels

    def labels(
        self,
        conversation: str,
        input_ids: Sequence[int] | None = None,
        *,
        template: str | ConversationTemplate = LLAVA_V1,
        check: bool = True,
    ) -> list[int]:
        """Training labels as READ's `handle_conversation_specifics` (collate_fn_train, conv_type "llava_v1")
        builds them for one conversation: `input_ids` with everything but the assistant answers (and their
        "</s>") set to -100.

        READ's arithmetic, reproduced as is: the conversation is split at "</s>" into rounds and each round at
        " ASSISTANT: "; position 0 (BOS) is masked, then per round the first `len(encode(instruction +
        " ASSISTANT: ")) - 2` positions are masked (the 2 = that encoding's BOS and the lone "▁" the trailing space
        becomes) and the cursor advances by `len(encode(round))` (its BOS stands for the round's "</s>"); everything
        from the cursor on (the unfinished tail and padding) is masked. Its consequences:
        * labels start exactly at the answer's first token (`▁The`, or `[SEG]` when the answer starts with it);
        * the token after a round's "</s>" is labelled only because the next round masks it, so a conversation
          whose text after the last "</s>" is not empty (e.g. ends at "ASSISTANT:") gets a tail of -100;
        * an answer that tokenises differently inside the conversation than in isolation shifts the mask by
          the difference (READ checks only the total: `cur_len == number of non-pad tokens`, which `check`
          reproduces, raising ValueError instead of READ's AssertionError).

        Args:
            conversation: the prompt string (after `<image>` expansion), e.g. a `build_prompt` output.
            input_ids: its ids (default `encode(conversation)`), possibly right-padded with `pad_id`.
            template: the template whose separators split rounds (READ training: llava_v1).
            check: raise when READ's length check fails (cur_len < model_max_length and cur_len != non-pad count).
        """
        tpl = _template(template)
        ids = list(self.encode(conversation) if input_ids is None else input_ids)
        target = [int(t) for t in ids]
        total_len = sum(int(t) != self.pad_id for t in ids)
        sep = tpl.answer_sep
        cur_len = 1
        target[:cur_len] = [IGNORE_INDEX] * min(cur_len, len(target))
        for i, rou in enumerate(conversation.split(tpl.sep2)):
            if rou == "":
                break
            parts = rou.split(sep)
            if len(parts) != 2:
                raise ValueError(
                    f"round {i} of the conversation splits into {len(parts)} parts at {sep!r} (READ asserts 2): "
                    f"{rou[-160:]!r}"
                )
            round_len = len(self.encode(rou))
            instruction_len = len(self.encode(parts[0] + sep)) - 2
            end = min(cur_len + instruction_len, len(target))
            target[cur_len:end] = [IGNORE_INDEX] * max(0, end - cur_len)
            cur_len += round_len
        target[cur_len:] = [IGNORE_INDEX] * max(0, len(target) - cur_len)
        if check and cur_len < self.model_max_length and cur_len != total_len:
            raise ValueError(
                f"READ's label check fails: rounds cover {cur_len} tokens but the conversation has {total_len} "
                f"non-pad tokens (READ would stop with an AssertionError): {conversation[-160:]!r}"
            )
        return target

    # ---------------------------------------------------------------- batches

    def pad(self, seqs: Sequence[Sequence[int]], *, side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
        """READ's `tokenize_and_pad` padding: right (`pad_sequence`, collate_fn_train / collate_fn_val) or left
        (`pad_sequence_to_max_length`, collate_fn_test) with `pad_id`. Returns input_ids (N, T) long and the
        attention mask `input_ids != pad_id` (N, T) bool (READ's rule: it also masks a real `<unk>` token)."""
        if side not in ("right", "left"):
            raise ValueError(f"side must be 'right' or 'left', got {side!r}")
        length = max((len(s) for s in seqs), default=0)
        input_ids = torch.full((len(seqs), length), self.pad_id, dtype=torch.long)
        for i, s in enumerate(seqs):
            if len(s):
                row = torch.as_tensor(list(s), dtype=torch.long)
                if side == "right":
                    input_ids[i, : len(s)] = row
                else:
                    input_ids[i, length - len(s):] = row
        return input_ids, input_ids.ne(self.pad_id)

    def collate_train(
        self, conversations: Sequence[str], *, template: str | ConversationTemplate = LLAVA_V1
    ) -> dict[str, torch.Tensor]:
        """The token part of READ's `collate_fn_train` for the conversations of a batch (already expanded with
        `<im_start>`/`<im_end>`, in batch order): right-padded input_ids, labels and attention_masks, truncated
        to `model_max_length - 255` columns when longer (READ's rule)."""
        input_ids, attention_masks = self.pad([self.encode(c) for c in conversations], side="right")
        labels = torch.tensor(
            [self.labels(c, row, template=template) for c, row in zip(conversations, input_ids.tolist())],
            dtype=torch.long,
        ).reshape(input_ids.shape)
        truncate_len = self.model_max_length - TRUNCATE_MARGIN
        if input_ids.shape[1] > truncate_len:
            input_ids, labels = input_ids[:, :truncate_len], labels[:, :truncate_len]
            attention_masks = attention_masks[:, :truncate_len]
        return {"input_ids": input_ids, "labels": labels, "attention_masks": attention_masks}

    # ---------------------------------------------------------------- decoding

    def decode(self, ids: Iterable[int], *, skip_special_tokens: bool = True) -> str:
        """4.31 slow `tokenizer.decode(ids, skip_special_tokens=...)`.

        Special ids (`<s>`, `</s>`, `<unk>` = pad) are dropped when skipping; added tokens (`[SEG]`, `<im_start>`,
        `<im_end>`: not "special" for a tokenizer loaded from the folder) are kept and joined to the text around
        them with single spaces, the rest is decoded by sentencepiece run by run: `... segmentation: [SEG] .`.
        Spaces are then cleaned up only if the folder's `clean_up_tokenization_spaces` says so (READ: False)."""
        tokens = [
            self.id_to_token(int(i)) for i in ids if not (skip_special_tokens and int(i) in self.special_ids)
        ]
        sub_texts: list[str] = []
        run: list[str] = []
        for token in tokens:
            if token in self.added_tokens or token == IMAGE_TOKEN:
                if run:
                    sub_texts.append(self._pieces_to_string(run))
                    run = []
                sub_texts.append(token)
            else:
                run.append(token)
        if run:
            sub_texts.append(self._pieces_to_string(run))
        text = " ".join(sub_texts)
        return _clean_up_tokenization(text) if self.clean_up_tokenization_spaces else text

    def _pieces_to_string(self, pieces: list[str]) -> str:
        """4.31 `LlamaTokenizer.convert_tokens_to_string`: special tokens are written as is (with a space before
        one that follows text), the pieces between them decoded by sentencepiece."""
        out, current, prev_is_special = "", [], False
        for i, piece in enumerate(pieces):
            if piece in self.special_tokens:
                if not prev_is_special and i != 0:
                    out += " "
                out += self.sp.decode_pieces(current) + piece
                prev_is_special, current = True, []
            else:
                current.append(piece)
                prev_is_special = False
        return out + self.sp.decode_pieces(current)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return data if isinstance(data, dict) else {}


def _content(entry: Any) -> str:
    """Token text of a special-token entry (a string or a serialised AddedToken dict)."""
    return str(entry["content"]) if isinstance(entry, dict) else str(entry)


def _clean_up_tokenization(text: str) -> str:
    """transformers' `clean_up_tokenization` (applied only when the tokenizer config asks for it)."""
    for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                 (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(a, b)
    return text
