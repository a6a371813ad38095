"""Word lists the parser, the rule rewriter and the validation share: attribute kinds, spatial relations, ordinals,
and the non-category nouns an expression's attributes hang on (shirt, hair, ...). The category nouns are data of
their own (`nouns_coco`, `nouns_refclef`, read by `lexicon`).

Written for this project from common English usage in referring expressions (RefCOCO-style "man on left",
"red shirt guy", "bowl behind the cup", "second chair from right").
"""

from __future__ import annotations

GENERIC_NOUNS: tuple[str, ...] = ("shape", "object", "thing", "item", "one")
"""Head nouns that name no category ("the largest shape"); an object edit may replace them with a category."""

ATTRIBUTE_KINDS: dict[str, dict[str, tuple[str, ...]]] = {
    "colour": {
        "red": ("red",), "orange": ("orange",), "yellow": ("yellow",), "green": ("green",), "blue": ("blue",),
        "purple": ("purple", "violet"), "pink": ("pink",), "brown": ("brown",), "black": ("black",),
        "white": ("white",), "gray": ("gray", "grey", "silver"), "cyan": ("cyan",), "magenta": ("magenta",),
        "tan": ("tan", "beige"),
    },
    "size": {"big": ("big", "large", "huge", "giant"), "small": ("small", "little", "tiny")},
    "height": {"tall": ("tall",), "short": ("short",)},
    "material": {"wooden": ("wooden",), "metal": ("metal", "metallic"), "plastic": ("plastic",),
                 "leather": ("leather",)},
    "pattern": {"striped": ("striped",), "plaid": ("plaid",), "spotted": ("spotted", "dotted"),
                "checkered": ("checkered",), "floral": ("floral",)},
    "age": {"young": ("young",), "old": ("old", "elderly")},
    "pose": {"standing": ("standing",), "sitting": ("sitting", "seated"), "lying": ("lying", "laying")},
    "state": {"open": ("open",), "closed": ("closed", "shut")},
    "fill": {"empty": ("empty",), "full": ("full",)},
}
"""Attribute kind -> value -> surface forms. An attribute edit swaps a surface for one of another value of the
same kind (a swap between surfaces of the same value, e.g. gray -> grey, is no change)."""

ATTRIBUTE_VALUE: dict[str, tuple[str, str]] = {
    surface: (kind, value)
    for kind, values in ATTRIBUTE_KINDS.items()
    for value, forms in values.items()
    for surface in forms
}
"""Attribute surface word -> (kind, value)."""

RELATION_SWAPS: dict[str, str] = {
    "left": "right", "right": "left",
    "leftmost": "rightmost", "rightmost": "leftmost",
    "top": "bottom", "bottom": "top",
    "topmost": "bottommost", "bottommost": "topmost",
    "upper": "lower", "lower": "upper",
    "above": "below", "below": "above",
    "over": "under", "under": "over", "underneath": "on top of", "beneath": "above", "on top of": "under",
    "in front of": "behind", "behind": "in front of", "in back of": "in front of",
    "front": "back", "back": "front",
    "inside": "outside", "outside": "inside",
    "closest": "farthest", "nearest": "farthest", "farthest": "closest", "furthest": "closest",
    "closer": "farther", "farther": "closer", "further": "closer",
    "largest": "smallest", "biggest": "smallest", "smallest": "largest",
    "bigger": "smaller", "larger": "smaller", "smaller": "bigger",
    "tallest": "shortest", "shortest": "tallest", "taller": "shorter", "shorter": "taller",
    "highest": "lowest", "lowest": "highest", "higher": "lower",
    "first": "last", "last": "first",
}
"""Spatial / comparative phrase -> its opposite. Multi-word phrases are matched before single words."""

ORDINALS: dict[str, int] = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5, "6th": 6, "7th": 7,
}
"""Ordinal word -> rank ("second chair from right"). A relation edit may swap one for another (second -> fifth)."""

ORDINAL_WORDS: dict[int, str] = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth",
                                 7: "seventh"}
"""Rank -> how an ordinal edit writes it."""

RELATION_WORDS: frozenset[str] = frozenset(RELATION_SWAPS) | frozenset(RELATION_SWAPS.values()) | frozenset(ORDINALS)
"""Every phrase a relation edit may replace or introduce."""

SUPERLATIVES: frozenset[str] = frozenset({
    "leftmost", "rightmost", "topmost", "bottommost", "closest", "nearest", "farthest", "furthest",
    "largest", "biggest", "smallest", "tallest", "shortest", "highest", "lowest", "first", "last",
})
"""A superlative picks one member of any non-empty group, so swapping one for its opposite ("the largest shape" ->
"the smallest shape") still names an object whenever the original did: such edits are rejected by default."""

PARTS: frozenset[str] = frozenset({
    "shirt", "t-shirt", "tshirt", "tee", "jacket", "coat", "hat", "cap", "helmet", "hoodie", "sweater",
    "sweatshirt", "jersey", "uniform", "dress", "skirt", "pants", "jeans", "shorts", "vest", "suit", "scarf",
    "shoes", "boots", "socks", "apron", "hair", "beard", "shades", "sunglasses", "glasses", "outfit", "clothes",
    "sleeves", "sleeve", "bikini", "wetsuit", "collar", "stripes", "spots", "fur", "mane", "head", "face", "hands",
    "arm", "arms", "legs", "feet", "tail", "ears", "nose", "trunk", "frosting", "sprinkles", "icing", "toppings",
    "crust", "handle", "lid", "wheels", "wheel", "window", "windows", "door", "roof", "seat", "cushion", "pillow",
    "blanket", "sheets", "trim", "writing", "letters", "numbers", "stripe", "bow", "ribbon", "plate",
    "sauce", "cheese", "leaves", "spot", "patch", "cover", "case", "logo", "design", "print",
})
"""Nouns that are not categories but carry an object's attributes: "man in red shirt" says the man has red."""

SCENE_NOUNS: frozenset[str] = frozenset({
    "picture", "image", "photo", "pic", "frame", "corner", "side", "edge", "background", "foreground", "row",
    "view", "shot", "scene",
})
"""Nouns of the picture itself: "on the left side of the picture" places the object, it names no anchor object."""

ANCHOR_FILLERS: frozenset[str] = frozenset({"of", "to", "the", "a", "an", "his", "her", "its", "their", "that", "this"})
"""Words between a relation and its anchor noun ("to the left of the bus")."""
