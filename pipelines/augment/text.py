"""Word spans of an expression, normalisation, and the single-replacement diff used by validation.

Expressions are edited at character offsets of their words, so punctuation and spacing the dataset gives are kept.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass

_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


@dataclass(frozen=True)
class Word:
    """One word of an expression: lower-cased text and its [start, end) character offsets."""

    text: str
    start: int
    end: int


@functools.lru_cache(maxsize=1 << 16)
def words_of(text: str) -> tuple[Word, ...]:
    """The words of `text` (lower-cased, punctuation dropped) with their character offsets in `text` (cached: the
    validation reads each candidate several times)."""
    return tuple(Word(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text.lower()))


def normalise(text: str) -> str:
    """Lower-case words joined by single spaces: the form two expressions are compared in."""
    return " ".join(w.text for w in words_of(text))


def replace_span(text: str, words: tuple[Word, ...], first: int, last: int, new: str) -> str:
    """`text` with words[first:last] (character range from the first word's start to the last's end) replaced."""
    return text[: words[first].start] + new + text[words[last - 1].end :]


@dataclass(frozen=True)
class Replacement:
    """The one changed region between two expressions: old words a[i:j] became new words b[k:l]."""

    old: tuple[str, ...]
    new: tuple[str, ...]
    old_start: int
    new_start: int


@functools.lru_cache(maxsize=1 << 14)
def single_replacement(original: str, candidate: str) -> Replacement | None:
    """The one contiguous word replacement turning `original` into `candidate`, or None when the change is not
    exactly one replacement (no change, several changed regions, or a pure insertion/deletion). Cached."""
    a = tuple(w.text for w in words_of(original))
    b = tuple(w.text for w in words_of(candidate))
    ops = [op for op in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes() if op[0] != "equal"]
    if len(ops) != 1 or ops[0][0] != "replace":
        return None
    _, i, j, k, m = ops[0]
    return Replacement(old=a[i:j], new=b[k:m], old_start=i, new_start=k)
