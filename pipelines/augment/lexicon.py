"""The nouns of one dataset: its category names with the words people use for them (`nouns_coco`,
`nouns_refclef`), group words ("animal"), plurals, and where the head noun of an expression is.

A surface (one or more words) names a set of categories: "guy" -> {person}, "bike" -> {bicycle, motorcycle},
"animal" -> every animal category of the dataset; generic nouns ("one", "thing", "shape") name none. Only entries
whose category the dataset has are used; a dataset category no table knows is named by its own words.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.augment.nouns_coco import COCO_GROUPS, COCO_NOUNS, COCO_PLURALS
from pipelines.augment.nouns_refclef import REFCLEF_NOUNS, REFCLEF_PLURALS
from pipelines.augment.text import Word
from pipelines.augment.vocab import ATTRIBUTE_VALUE, GENERIC_NOUNS, PARTS

NOUN_TABLES: tuple[dict[str, tuple[str, ...]], ...] = (COCO_NOUNS, REFCLEF_NOUNS)
"""Category -> words tables, merged for the categories a dataset has."""

GROUP_TABLES: tuple[dict[str, tuple[str, ...]], ...] = (COCO_GROUPS,)
"""Group word -> member categories tables."""

PLURALS: dict[str, str] = {**REFCLEF_PLURALS, **COCO_PLURALS}
"""Irregular plurals (and words that are their own plural)."""


def pluralise(noun: str) -> str:
    """English plural of a (possibly multi-word) noun: the last word is inflected."""
    head, _, last = noun.rpartition(" ")
    if last in PLURALS:
        plural = PLURALS[last]
    elif last.endswith(("s", "x", "ch", "sh")):
        plural = last + "es"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        plural = last[:-1] + "ies"
    else:
        plural = last + "s"
    return f"{head} {plural}" if head else plural


def _words(name: str) -> tuple[str, ...]:
    """A category name or surface as lower-case words ("sky-blue" stays one word, as `text.words_of` reads it)."""
    return tuple(name.lower().split())


@dataclass(frozen=True)
class NounSpan:
    """A noun found in an expression: words[start:end], the categories it may name (empty for a generic noun such
    as "shape"), whether it is plural, and whether it is a possessive ("guy's") that modifies another noun."""

    start: int
    end: int
    categories: frozenset[str]
    plural: bool
    possessive: bool = False

    @property
    def category(self) -> str | None:
        """The one category the noun names; None for a generic noun or a word naming several ("bike")."""
        return next(iter(self.categories)) if len(self.categories) == 1 else None

    @property
    def generic(self) -> bool:
        return not self.categories


@dataclass(frozen=True, eq=False)
class Lexicon:
    """Surface noun phrase -> (categories it may name, is plural), for one dataset. Compared and hashed by identity,
    so readings of an expression can be cached per lexicon (`description.describe`).

    Attributes:
        surfaces: word tuple -> (categories, plural); generic nouns map to an empty set.
        categories: the dataset's category names (lower case, sorted).
        written: category -> how an object edit writes it (the table's first word, else the name).
        longest: words in the longest surface.
    """

    surfaces: dict[tuple[str, ...], tuple[frozenset[str], bool]]
    categories: tuple[str, ...]
    written: dict[str, str]
    longest: int = 1

    @classmethod
    def build(cls, categories: list[str]) -> Lexicon:
        """Lexicon of the dataset's category names (lower-cased), the tables' words for them, group words naming
        at least one of them, generic nouns, and the plurals of all."""
        names = tuple(sorted({c.lower() for c in categories}))
        senses: dict[tuple[str, ...], set[str]] = {}
        written: dict[str, str] = {}
        for name in names:
            forms = [name, *(w for table in NOUN_TABLES for w in table.get(name, ()))]
            written[name] = next((table[name][0] for table in NOUN_TABLES if name in table), name)
            if "-" in name and not any(name in table for table in NOUN_TABLES):
                forms.append(name.replace("-", " "))
            for form in forms:
                senses.setdefault(_words(form), set()).add(name)
        for table in GROUP_TABLES:
            for word, members in table.items():
                present = {m for m in members if m in names}
                if present:
                    senses.setdefault(_words(word), set()).update(present)
        surfaces: dict[tuple[str, ...], tuple[frozenset[str], bool]] = {}
        for generic in GENERIC_NOUNS:
            surfaces[(generic,)] = (frozenset(), False)
            surfaces[_words(pluralise(generic))] = (frozenset(), True)
        for words, cats in senses.items():
            surfaces[words] = (frozenset(cats), False)
        for words, cats in senses.items():
            plural = pluralise(" ".join(words))
            if plural not in PARTS:  # "glasses" are worn, not two wine glasses
                surfaces.setdefault(_words(plural), (frozenset(cats), True))
        return cls(surfaces=surfaces, categories=names, written=written, longest=max(len(s) for s in surfaces))

    def sense_of(self, words: tuple[str, ...]) -> tuple[frozenset[str], bool] | None:
        """(categories, plural) when `words` is exactly a known noun phrase, else None."""
        return self.surfaces.get(tuple(words))

    def category_of(self, words: tuple[str, ...]) -> tuple[str | None, bool] | None:
        """(category, plural) when `words` is exactly a known noun phrase, else None; the category is None for a
        generic noun and for a word naming several categories (use `sense_of` for those)."""
        sense = self.sense_of(words)
        if sense is None:
            return None
        cats, plural = sense
        return (next(iter(cats)) if len(cats) == 1 else None), plural

    def nouns_in(self, words: tuple[Word, ...]) -> list[NounSpan]:
        """Known nouns in `words`, left to right, longest phrase first at each position, non-overlapping.

        A one-word surface that is also an attribute word ("orange") counts as a noun only when no noun, part
        ("shirt") or other attribute word follows it ("orange cat", "orange shirt guy" use it as a colour).
        A possessive ("guy's") is a noun marked `possessive`.
        """
        texts = [w.text for w in words]
        found, i = [], 0
        while i < len(texts):
            for n in range(min(self.longest, len(texts) - i), 0, -1):
                key = tuple(texts[i : i + n])
                possessive = key[-1].endswith("'s")
                if possessive:
                    key = (*key[:-1], key[-1][:-2])
                hit = self.surfaces.get(key)
                if hit is None or (n == 1 and not possessive and self._used_as_attribute(texts, i)):
                    continue
                found.append(NounSpan(i, i + n, hit[0], hit[1], possessive))
                i += n
                break
            else:
                i += 1
        return found

    def _used_as_attribute(self, texts: list[str], i: int) -> bool:
        if texts[i] not in ATTRIBUTE_VALUE or i + 1 >= len(texts):
            return False
        nxt = texts[i + 1]
        return nxt in PARTS or nxt in ATTRIBUTE_VALUE or any(
            tuple(texts[i + 1 : i + 1 + n]) in self.surfaces for n in range(1, self.longest + 1))

    def head_noun(self, words: tuple[Word, ...]) -> NounSpan | None:
        """The noun the expression refers to: the first known noun that is neither a possessive nor directly
        followed by another noun ("orange cat" -> cat, "baseball player" -> player, "guy's bike" -> bike); when it
        is followed by "of" and a noun naming a subset of its categories, that noun ("slice of pizza" -> pizza)."""
        nouns = self.nouns_in(words)
        for k, noun in enumerate(nouns):
            following = nouns[k + 1] if k + 1 < len(nouns) else None
            if noun.possessive or (following is not None and following.start == noun.end):
                continue
            if (following is not None and following.start == noun.end + 1 and words[noun.end].text == "of"
                    and following.categories and following.categories < noun.categories):
                return following
            return noun
        return None

    def surface_of(self, category: str, *, plural: bool) -> str:
        """How an object edit writes `category` (its written form; plural when the replaced noun was plural)."""
        word = self.written.get(category, category)
        return pluralise(word) if plural else word

    def names_of(self, category: str) -> list[tuple[str, ...]]:
        """Every surface that may name `category` (its name, synonyms, group words, plurals)."""
        return [s for s, (cats, _) in self.surfaces.items() if category in cats]
