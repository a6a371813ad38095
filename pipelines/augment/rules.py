"""The embedded rule rewriter: word-list edits of one element, no model needed.

- object: the head noun becomes a dataset category (name, or plural) that is absent from the image;
- attribute: a colour/size/material/... word becomes a word of another value of the same kind (for kinds the
  dataset annotates, a value the dataset has and the image does not: `ImageContext.attribute_problem`);
- relation: a spatial or comparative phrase becomes its opposite (left -> right, in front of -> behind, ...), or an
  ordinal another rank (second chair from right -> fourth chair from right).
Candidates come out in an order drawn from `rng` and are validated by the caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from random import Random

from pipelines.augment.context import ImageContext
from pipelines.augment.proposal import Proposal
from pipelines.augment.text import replace_span, words_of
from pipelines.augment.vocab import ATTRIBUTE_KINDS, ATTRIBUTE_VALUE, ORDINAL_WORDS, ORDINALS, RELATION_SWAPS

_RELATION_BY_FIRST: dict[str, list[tuple[str, ...]]] = {}
for _phrase in sorted(RELATION_SWAPS, key=lambda p: -len(p.split())):
    _RELATION_BY_FIRST.setdefault(_phrase.split()[0], []).append(tuple(_phrase.split()))


class RuleRewriter:
    """Word-list rewriter; stateless, so one instance serves every worker."""

    name = "rules"

    def propose(self, text: str, edit: str, ctx: ImageContext, rng: Random) -> Iterator[Proposal]:
        """Every single-element rewrite of `edit` kind, shuffled by `rng`; one reject Proposal when there is none."""
        if edit == "object":
            candidates, none_reason = self._object_candidates(text, ctx)
        elif edit == "attribute":
            candidates, none_reason = self._attribute_candidates(text, ctx), "no_editable_element"
        elif edit == "relation":
            candidates, none_reason = self._relation_candidates(text), "no_editable_element"
        else:
            raise ValueError(f"augment.edits: unknown edit {edit!r}; use object, attribute or relation")
        if not candidates:
            yield Proposal(edit=edit, reason=none_reason)
            return
        rng.shuffle(candidates)
        for candidate in candidates:
            yield Proposal(edit=edit, text=candidate)

    @staticmethod
    def _object_candidates(text: str, ctx: ImageContext) -> tuple[list[str], str]:
        words = words_of(text)
        head = ctx.lexicon.head_noun(words)
        if head is None:
            return [], "no_editable_element"
        absent = [c for c in ctx.absent if c != head.category]
        if not absent:
            return [], "no_absent_category"
        surfaces = [ctx.lexicon.surface_of(c, plural=head.plural) for c in absent]
        return [replace_span(text, words, head.start, head.end, s) for s in surfaces], ""

    @staticmethod
    def _attribute_candidates(text: str, ctx: ImageContext) -> list[str]:
        words = words_of(text)
        head = ctx.lexicon.head_noun(words)
        out = []
        for i, w in enumerate(words):
            if w.text not in ATTRIBUTE_VALUE or (head is not None and head.start <= i < head.end):
                continue  # "the orange": the colour word is the head noun here, not an attribute
            kind, value = ATTRIBUTE_VALUE[w.text]
            for other, forms in ATTRIBUTE_KINDS[kind].items():
                if other != value and ctx.attribute_problem(kind, other) is None:
                    out.append(replace_span(text, words, i, i + 1, forms[0]))
        return out

    @staticmethod
    def _relation_candidates(text: str) -> list[str]:
        words = words_of(text)
        out, i = [], 0
        for k, w in enumerate(words):
            if w.text in ORDINALS and w.text not in RELATION_SWAPS:
                out += [replace_span(text, words, k, k + 1, _ordinal_like(w.text, rank))
                        for rank in ORDINAL_WORDS if rank != ORDINALS[w.text]]
        while i < len(words):
            for phrase in _RELATION_BY_FIRST.get(words[i].text, ()):  # longest first: "in front of" before "front"
                n = len(phrase)
                if tuple(w.text for w in words[i : i + n]) == phrase:
                    out.append(replace_span(text, words, i, i + n, RELATION_SWAPS[" ".join(phrase)]))
                    i += n - 1
                    break
            i += 1
        return out


def _ordinal_like(original: str, rank: int) -> str:
    """Rank `rank` written the way `original` is: "fourth" for "second", "4th" for "2nd"."""
    if original[0].isdigit():
        return f"{rank}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(rank, 'th') }"
    return ORDINAL_WORDS[rank]
