"""LLaVA-Instruct reader: `<root>/llava_dataset/llava_instruct_150k.json`, images under `<root>/coco/train2017/`.

One sample per conversation item (an image may have several items; the n-th repeat of an image id gets the key
"<id>-<n>"). Turns as READ's `preprocess_multimodal` leaves them (`normalise_conversation`). A VQA sample counts as
one query.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pipelines.sources.base import BadImageError, LoadResult, Reject, WorkUnit, estimate_bytes, read_image
from schemas.sample import ShardSample, make_key

IMAGE_TOKEN = "<image>"


def normalise_conversation(turns: Any) -> list[dict[str, str]]:
    """LLaVA turns -> [{"from": "human"|"gpt", "value": str}, ...] as READ's `preprocess_multimodal` leaves them: a
    turn holding `<image>` becomes "<image>\\n" + its stripped text, other turns stay verbatim; a leading non-human
    turn is dropped, and a first question without `<image>` gets one (READ would feed no image).

    Raises:
        ValueError: "bad_conversation: ..." when turns are malformed or no human turn is left.
    """
    if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
        raise ValueError("bad_conversation: 'conversations' must be a list of {from, value} objects")
    out = []
    for i, t in enumerate(turns):
        who, value = t.get("from"), t.get("value")
        if who not in ("human", "gpt") or not isinstance(value, str):
            raise ValueError(f"bad_conversation: turn {i} needs from in (human, gpt) and a string value, got {who!r}")
        out.append({"from": who, "value": value})
    if out and out[0]["from"] != "human":
        out = out[1:]
    if not out or out[0]["from"] != "human":
        raise ValueError("bad_conversation: no human turn to start the conversation")
    for t in out:  # READ's preprocess_multimodal: only a turn holding <image> is rewritten (and stripped)
        if IMAGE_TOKEN in t["value"]:
            t["value"] = (IMAGE_TOKEN + "\n" + t["value"].replace(IMAGE_TOKEN, "").strip()).strip()
    if not out[0]["value"].startswith(IMAGE_TOKEN):
        out[0]["value"] = IMAGE_TOKEN + "\n" + out[0]["value"]  # READ would show no image; the model needs one
    return out


@dataclass(kw_only=True)
class LlavaSource:
    """Reads LLaVA-Instruct-150k (the file has no splits; `split` only labels the output)."""

    dataset: str
    root: str
    split: str
    json_name: str = "llava_instruct_150k.json"

    @property
    def json_path(self) -> str:
        return os.path.join(self.root, "llava_dataset", self.json_name)

    @property
    def image_dir(self) -> str:
        return os.path.join(self.root, "coco", "train2017")

    def check(self) -> None:
        if not os.path.exists(self.json_path):
            raise ValueError(f"root: {self.json_path} does not exist; point root= at the folder holding llava_dataset/")

    def index(self) -> tuple[list[WorkUnit], list[Reject]]:
        self.check()
        try:
            with open(self.json_path, encoding="utf-8") as f:
                items = json.load(f)
            if not isinstance(items, list):
                raise ValueError(f"expected a list of items, got {type(items).__name__}")
        except (OSError, UnicodeDecodeError, ValueError) as err:
            return [], [Reject(source=self.json_path, key=os.path.basename(self.json_path), num_queries=0,
                               reason=f"bad_json: {self.json_path}: {err}")]
        seen: Counter[str] = Counter()
        units, rejects = [], []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("image"), str) or "id" not in item:
                rejects.append(Reject(source=self.json_path, key=f"item#{i}", num_queries=1,
                                      reason=f"bad_item: item {i} needs 'id' and 'image'"))
                continue
            item_id = str(item["id"])
            seen[item_id] += 1
            key = make_key(item_id) if seen[item_id] == 1 else make_key(item_id, seen[item_id] - 1)
            try:
                conversation = normalise_conversation(item.get("conversations"))
            except ValueError as err:
                rejects.append(Reject(source=self.json_path, key=key, num_queries=1, reason=str(err)))
                continue
            path = os.path.join(self.image_dir, item["image"])
            try:
                size = os.path.getsize(path)
            except OSError:
                size = 0
            units.append(WorkUnit(key=key, source=path, num_queries=1, est_bytes=estimate_bytes(size, 0, 0, 0),
                                  payload={"image": path, "conversation": conversation, "id": item_id}))
        units.sort(key=lambda u: u.key)
        return units, rejects

    def load(self, unit: WorkUnit) -> LoadResult:
        p = unit.payload
        try:
            data, fmt, height, width = read_image(p["image"])
        except BadImageError as err:
            return LoadResult(rejects=[Reject(source=p["image"], key=unit.key, num_queries=1, reason=str(err))])
        sample = ShardSample(key=unit.key, dataset=self.dataset, split=self.split, image_bytes=data, image_format=fmt,
                             height=height, width=width, conversation=p["conversation"], source=p["image"],
                             extra={"id": p["id"]})
        return LoadResult(sample=sample)
