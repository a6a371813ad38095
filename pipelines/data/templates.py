"""Question and answer templates for training conversations, plus the fixed evaluation templates.

The training lists are this project's own wording (random choice per conversation, so the model does not overfit to
one phrasing). Evaluation uses one fixed template per query kind so results are deterministic; those three strings are
READ's ReasonSeg evaluation prompts, quoted from the spec.

Placeholders (`str.format` fields) each list must hold, checked by `REQUIRED_FIELDS` and the unit tests:
    SHORT_QUESTIONS      {class_name}           a short noun phrase or class name
    LONG_QUESTIONS       {sent}                 a full sentence / instruction
    SHORT_ANSWERS        (none), exactly one [SEG]
    ECHO_ANSWERS         {class_name}, exactly one [SEG] after it (answer_style "echo")
    LONG_ANSWERS         (none), exactly one [SEG]
    DENIALS              {class_name}, no [SEG] (R-RefCOCO negatives: the object is absent)
    CORRECTIONS          {false} and {gt_sent}, no [SEG] (false premises: name the wrong and the right expression)
Every question starts with "<image>\n" so the image comes first in the user turn, as in LLaVA's data.
"""

from __future__ import annotations

import string

IMAGE_TOKEN = "<image>"
"""Placeholder for the image in a prompt; `tokenize` expands it to the model's number of image tokens."""
SEG_TOKEN = "[SEG]"
"""The segmentation token; every one in an answer is paired with one ground-truth mask."""

_Q = IMAGE_TOKEN + "\n"

SHORT_QUESTIONS: tuple[str, ...] = tuple(
    _Q + q
    for q in (
        "Can you segment {class_name} in this image?",
        "Please segment {class_name} in this image.",
        "Where is {class_name} in this picture? Answer with a segmentation mask.",
        "Show me {class_name} in this image.",
        "Mark the pixels that belong to {class_name}.",
        "Could you outline {class_name} for me?",
        "Find {class_name} in the image and segment it.",
        "Which region of the image shows {class_name}? Please give a mask.",
        "Highlight {class_name} in this photo.",
        "Give me a segmentation mask of {class_name}.",
        "I am looking for {class_name}. Can you segment it?",
        "Segment {class_name}, please.",
        "Where can I see {class_name} here? Reply with a mask.",
        "Locate {class_name} in this image and output its mask.",
        "Please point out {class_name} with a segmentation mask.",
        "What part of this image is {class_name}? Segment it.",
        "Draw a mask over {class_name}.",
        "Can you find {class_name} and mark it with a mask?",
        "Produce the segmentation of {class_name} in this picture.",
        "Identify {class_name} in the image and segment it.",
        "Select {class_name} in this image.",
        "Could you mask out {class_name}?",
        "Where does {class_name} appear in this image? Please output a mask.",
        "Pick out {class_name} and give its segmentation.",
        "Help me find {class_name} in this picture by segmenting it.",
        "Cut out {class_name} from this image.",
        "Please separate {class_name} from the rest of the image.",
        "Tell me where {class_name} is by drawing its mask.",
        "In this image, can you segment {class_name}?",
        "Is there {class_name}? If so, segment it.",
        "Show the region covered by {class_name}.",
        "Extract a mask for {class_name} in this photo.",
        "Please mark {class_name} in the image with a segmentation mask.",
        "Segment out {class_name} in this image, please.",
    )
)
"""Questions about a short expression or class name (RefCOCO family, semantic classes, short ReasonSeg queries)."""

LONG_QUESTIONS: tuple[str, ...] = tuple(
    _Q + q
    for q in (
        "{sent} Please answer with a segmentation mask.",
        "{sent} Please respond with a segmentation mask.",
        "{sent} Output the segmentation mask.",
        "{sent} Answer by segmenting the right region.",
        "{sent} Show the answer as a mask.",
        "{sent} Please give the segmentation of the answer.",
        "{sent} Mark the answer in the image with a mask.",
        "{sent} Highlight the region that answers this.",
        "{sent} Reply with the mask of the relevant object.",
        "{sent} Segment whatever answers the question.",
        "Please segment the answer to this: {sent}",
        "Read the request and segment the answer. {sent}",
        "{sent} Point it out with a segmentation mask.",
        "Here is a question about the image: {sent} Please answer with a mask.",
        "{sent} Use a segmentation mask to answer.",
        "{sent} Which region is it? Give its mask.",
        "Think about this and segment the answer: {sent}",
    )
)
"""Questions around a full sentence or instruction (ReasonSeg long queries)."""

SHORT_ANSWERS: tuple[str, ...] = (
    "It is [SEG].",
    "Sure, [SEG].",
    "Sure, it is [SEG].",
    "Here it is: [SEG].",
    "[SEG].",
    "The mask is [SEG].",
    "Sure, here is the mask: [SEG].",
    "Of course, [SEG].",
    "This is it: [SEG].",
    "Found it: [SEG].",
    "Here you go: [SEG].",
    "The segmentation is [SEG].",
    "Certainly, [SEG].",
    "It is here: [SEG].",
    "Sure, the segmentation result is [SEG].",
    "Here is the segmentation: [SEG].",
    "No problem, [SEG].",
    "I have segmented it: [SEG].",
    "The region is [SEG].",
    "Sure thing, [SEG].",
    "OK, [SEG].",
    "Done: [SEG].",
)
"""Answers for short questions; each holds exactly one [SEG]."""

LONG_ANSWERS: tuple[str, ...] = (
    "Sure, the answer is [SEG].",
    "The region that answers the question is [SEG].",
    "Here is the part of the image that fits the description: [SEG].",
    "Based on the image, it is [SEG].",
    "Looking at the image, the answer is [SEG].",
    "That would be [SEG].",
    "The object you are asking about is [SEG].",
    "I think it is [SEG].",
    "Sure, it is this region: [SEG].",
    "After looking carefully, the answer is [SEG].",
    "The best match in the image is [SEG].",
    "It is the region shown here: [SEG].",
)
"""Answers for long (sentence) questions; each holds exactly one [SEG]."""

ECHO_ANSWERS: tuple[str, ...] = (
    "Sure, {class_name} [SEG].",
    "Here is {class_name} [SEG].",
    "It is {class_name} [SEG].",
    "I found {class_name} [SEG].",
    "This is {class_name} [SEG].",
    "Sure, the mask of {class_name} is [SEG].",
)
"""Answers for short questions under `answer_style="echo"`: the answer names the expression before its [SEG]
(grounded-phrase answers, as in GLaMM / LISA++ data), so the [SEG] state sits next to the words it refers to."""

DENIALS: tuple[str, ...] = (
    "I can't find {class_name} in this image.",
    "There is no {class_name} in this image.",
    "I don't see {class_name} here.",
    "Sorry, {class_name} does not appear in this image.",
    "This image does not contain {class_name}.",
    "I could not find {class_name} anywhere in the picture.",
    "{class_name} is not in this image.",
    "Sorry, there is no {class_name} in this picture.",
    "I looked, but {class_name} is not present in this image.",
    "Nothing in this image matches {class_name}.",
    "The image shows no {class_name}.",
    "I am unable to locate {class_name} in this image.",
)
"""Answers when the queried object is absent (R-RefCOCO negatives); no [SEG], no mask."""

CORRECTIONS: tuple[str, ...] = (
    "There is no {false}, but there is {gt_sent}.",
    "I can't find {false}, but I can see {gt_sent}.",
    "The image has no {false}; there is {gt_sent} instead.",
    "There isn't {false} in this image, but there is {gt_sent}.",
    "Sorry, {false} is not in the image. Did you mean {gt_sent}?",
    "I don't see {false}. Perhaps you mean {gt_sent}.",
    "{false} does not appear here, although there is {gt_sent}.",
    "No {false} in this picture, but I do see {gt_sent}.",
    "That is not quite right: there is no {false}, only {gt_sent}.",
    "I can't find {false}; the closest match is {gt_sent}.",
    "There is no {false} here. There is {gt_sent}, though.",
    "The picture does not show {false}, but it does show {gt_sent}.",
)
"""Answers to false-premise queries (FP-RefCOCO); no [SEG], no mask."""

EVAL_SHORT_QUESTION = _Q + "What is {class_name} in this image? Please output segmentation mask."
"""Fixed evaluation question for short queries (READ's ReasonSeg eval template)."""
EVAL_LONG_QUESTION = _Q + "{sent} Please output segmentation mask."
"""Fixed evaluation question for long (sentence) queries."""
EVAL_ANSWER = "Sure, the segmentation result is [SEG]."
"""Fixed evaluation answer (teacher-forced evaluation)."""
EVAL_ECHO_ANSWER = "Sure, {class_name} [SEG]."
"""Fixed teacher-forced answer for short queries under `answer_style="echo"`."""

def as_prompted(text: str, *, is_sentence: bool) -> str:
    """A query as READ writes it into questions and answers: a short phrase (class name, referring expression) is
    lower-cased (READ's `text.lower()` in every dataset and in evaluation); a sentence is kept as written."""
    return text if is_sentence else text.lower()


REQUIRED_FIELDS: dict[str, tuple[frozenset[str], int]] = {
    "SHORT_QUESTIONS": (frozenset({"class_name"}), 0),
    "LONG_QUESTIONS": (frozenset({"sent"}), 0),
    "SHORT_ANSWERS": (frozenset(), 1),
    "LONG_ANSWERS": (frozenset(), 1),
    "ECHO_ANSWERS": (frozenset({"class_name"}), 1),
    "DENIALS": (frozenset({"class_name"}), 0),
    "CORRECTIONS": (frozenset({"false", "gt_sent"}), 0),
    "EVAL_SHORT_QUESTION": (frozenset({"class_name"}), 0),
    "EVAL_LONG_QUESTION": (frozenset({"sent"}), 0),
    "EVAL_ANSWER": (frozenset(), 1),
    "EVAL_ECHO_ANSWER": (frozenset({"class_name"}), 1),
}
"""Per template list (module attribute name): (exact placeholder set, exact number of [SEG])."""


def placeholders(template: str) -> set[str]:
    """Names of the `str.format` fields in `template` (e.g. {"class_name"})."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def join_seg_answers(answers: list[str]) -> str:
    """Several single-[SEG] answers -> one answer with one [SEG] per part ("A, and B." style).

    Used when one conversation asks for several classes at once; the result holds len(answers) [SEG] tokens.
    """
    parts = [a.rstrip(".") for a in answers]
    if len(parts) <= 1:
        return (parts[0] + ".") if parts else ""
    return ", ".join(parts[:-1]) + ", and " + parts[-1] + "."
