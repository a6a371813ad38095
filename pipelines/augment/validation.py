"""The one check every false-premise candidate goes through, whichever rewriter proposed it.

`check_candidate` returns None for a lexically valid false premise, else a short reject code. A valid candidate
differs from the original by exactly one word replacement of the stated kind:
- object: a noun becomes a noun whose categories (every one it may name) are NOT annotated in the image;
- attribute: an attribute word becomes a different value of the same kind (colour, size, ...), and the new
  (value, noun) pair is not described by any true expression of the image; where the dataset annotates that kind,
  the new value is one the dataset has and no object of the image has (`ImageContext.attribute_problem`);
- relation: a spatial/comparative phrase becomes another one (superlative swaps are rejected unless allowed,
  see `vocab.SUPERLATIVES`).
It must also differ from every true expression of the image. `validate` then judges an attribute or relation
edit against the image's annotated objects (`grounding`): rejected when it describes one of them
("describes_annotated_object"), kept unverified when the annotations cannot tell.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.augment.context import ImageContext, noun_key
from pipelines.augment.grounding import ground
from pipelines.augment.text import normalise, single_replacement, words_of
from pipelines.augment.vocab import ATTRIBUTE_VALUE, RELATION_WORDS, SUPERLATIVES

REJECT_CODES = (
    "empty",
    "unchanged",
    "matches_true_expression",
    "not_one_replacement",
    "unknown_edit",
    "not_a_noun",
    "unverifiable_category",
    "category_present",
    "not_an_attribute",
    "attribute_kind_mismatch",
    "attribute_seen_in_image",
    "attribute_not_in_dataset",
    "attribute_in_image",
    "not_a_relation",
    "superlative_swap",
    "describes_annotated_object",
    "still_describes_target",
    "no_editable_element",
    "no_absent_category",
    "duplicate",
    "lm_malformed",
    "lm_bad_edit_type",
)
"""Every code `check_candidate` and the rewriters report (the summary table counts them per edit type)."""


def check_candidate(
    original: str, candidate: str, edit: str, ctx: ImageContext, *, allow_superlatives: bool = False
) -> str | None:
    """None when `candidate` is a valid `edit` false premise of `original` in the image `ctx`, else a reject code."""
    norm = normalise(candidate)
    if not norm:
        return "empty"
    if norm == normalise(original):
        return "unchanged"
    if norm in ctx.true_texts:
        return "matches_true_expression"
    rep = single_replacement(original, candidate)
    if rep is None:
        return "not_one_replacement"
    if edit == "object":
        return _check_object(rep.old, rep.new, ctx)
    if edit == "attribute":
        return _check_attribute(candidate, rep.old, rep.new, rep.new_start, ctx)
    if edit == "relation":
        return _check_relation(rep.old, rep.new, allow_superlatives)
    return "unknown_edit"


@dataclass(frozen=True)
class Verdict:
    """A candidate's fate: `reason` is None for an accepted false premise, which is `verified` when the image's
    annotations show that it describes none of its objects."""

    reason: str | None
    verified: bool = False


def validate(original: str, candidate: str, edit: str, ctx: ImageContext, *, target: int | None = None,
             allow_superlatives: bool = False) -> Verdict:
    """`check_candidate`, then for attribute and relation edits the judgement against the image's objects
    (`grounding.ground`; `target` is the annotation `original` refers to). An object edit that passes is verified:
    the annotations list every category the image holds. Where the objects are known and the grounding reads the
    edited words, it replaces the word-level "attribute_seen_in_image" ("black dog on the left" is false when the
    black dog is the one on the right)."""
    reason = check_candidate(original, candidate, edit, ctx, allow_superlatives=allow_superlatives)
    deferred = reason == "attribute_seen_in_image" and bool(ctx.objects)
    if reason is not None and not deferred:
        return Verdict(reason)
    if edit == "object":
        return Verdict(None, verified=True)
    rep = single_replacement(original, candidate)
    assert rep is not None  # check_candidate got that far
    grounding = ground(candidate, set(range(rep.new_start, rep.new_start + len(rep.new))), ctx, target)
    if deferred and not grounding.read:
        return Verdict(reason)
    return Verdict(grounding.reason, verified=grounding.verified)


def _check_object(old: tuple[str, ...], new: tuple[str, ...], ctx: ImageContext) -> str | None:
    if ctx.lexicon.sense_of(old) is None:
        return "not_a_noun"
    named = ctx.lexicon.sense_of(new)
    if named is None or not named[0]:
        # A noun the dataset has no category for cannot be checked against the annotations.
        return "unverifiable_category"
    if named[0] & ctx.present:
        return "category_present"
    return None


def _check_attribute(
    candidate: str, old: tuple[str, ...], new: tuple[str, ...], new_start: int, ctx: ImageContext
) -> str | None:
    if len(old) != 1 or len(new) != 1 or old[0] not in ATTRIBUTE_VALUE or new[0] not in ATTRIBUTE_VALUE:
        return "not_an_attribute"
    (old_kind, old_value), (new_kind, new_value) = ATTRIBUTE_VALUE[old[0]], ATTRIBUTE_VALUE[new[0]]
    if old_kind != new_kind:
        return "attribute_kind_mismatch"
    if old_value == new_value:
        return "unchanged"
    problem = ctx.attribute_problem(new_kind, new_value)
    if problem is not None:
        return problem
    words = words_of(candidate)
    noun = next((n for n in ctx.lexicon.nouns_in(words) if new_start < n.start <= new_start + 3), None)
    if noun is not None and (new_kind, new_value, noun_key(noun.category, words, noun.start, noun.end)) in (
        ctx.attribute_pairs
    ):
        return "attribute_seen_in_image"
    return None


_FILLERS = frozenset({"of", "to", "the", "on", "in", "at", "side", "from", "of the"})
"""Words a relation phrase may bring along ("left of" -> "behind"): stripped from the ends before matching."""


def _relation_phrase(words: tuple[str, ...]) -> str | None:
    """The relation phrase `words` spell, allowing filler words at either end ("left of" -> "left"), else None."""
    for start in range(len(words)):
        for end in range(len(words), start, -1):
            if all(w in _FILLERS for w in words[:start] + words[end:]) and " ".join(words[start:end]) in RELATION_WORDS:
                return " ".join(words[start:end])
    return None


def _check_relation(old: tuple[str, ...], new: tuple[str, ...], allow_superlatives: bool) -> str | None:
    old_phrase, new_phrase = _relation_phrase(old), _relation_phrase(new)
    if old_phrase is None or new_phrase is None or old_phrase == new_phrase:
        return "not_a_relation"
    if not allow_superlatives and (old_phrase in SUPERLATIVES or new_phrase in SUPERLATIVES):
        return "superlative_swap"
    return None
