"""Prediction requests: one image with one query or prompt, from the command line or a JSON-lines file."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass

from pipelines.predict.config import MODES, PredictConfig

_SAFE_ID = re.compile(r"^[A-Za-z0-9_\-.]+$")


@dataclass(frozen=True, kw_only=True)
class PredictRequest:
    """One query on one image. `request_id` names its outputs (masks/<id>.png, traces/<id>.npz)."""

    request_id: str
    image: str
    query: str = ""
    prompt: str = ""
    mode: str = "segment"


def _request_id(image: str, query: str, prompt: str, mode: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_\-]", "_", os.path.splitext(os.path.basename(image))[0])[:40] or "image"
    digest = hashlib.sha1(json.dumps([image, query, prompt, mode]).encode()).hexdigest()[:10]
    return f"{stem}-{digest}"


def make_request(*, image: str, query: str = "", prompt: str = "", mode: str = "segment", request_id: str = "",
                 where: str = "") -> PredictRequest:
    """A validated request; `where` (e.g. "inputs.jsonl line 3") prefixes error messages."""
    at = f"{where}: " if where else ""
    if mode not in MODES:
        raise ValueError(f"{at}mode must be one of {MODES}, got {mode!r}")
    if bool(query) == bool(prompt):
        raise ValueError(f"{at}give exactly one of query or prompt")
    if not image:
        raise ValueError(f"{at}no image")
    if request_id and not _SAFE_ID.match(request_id):
        raise ValueError(f"{at}id {request_id!r} may hold only letters, digits, '_', '-' and '.' (it names files)")
    return PredictRequest(request_id=request_id or _request_id(image, query, prompt, mode), image=image,
                          query=query, prompt=prompt, mode=mode)


def requests_of(cfg: PredictConfig) -> list[PredictRequest]:
    """The requests `cfg` asks for: its single image/query, or every line of `cfg.inputs`.

    Raises ValueError naming the file and line of a malformed request, or a request id used twice.
    """
    if not cfg.inputs:
        return [make_request(image=cfg.image, query=cfg.query, prompt=cfg.prompt, mode=cfg.mode)]
    folder = os.path.dirname(cfg.inputs)
    out: list[PredictRequest] = []
    with open(cfg.inputs, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"inputs={cfg.inputs} line {number}"
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: not JSON ({err})") from err
            if not isinstance(entry, dict):
                raise ValueError(f"{where}: expected an object with image and query or prompt")
            image = str(entry.get("image", ""))
            if image and not os.path.isabs(image) and "://" not in image:
                image = os.path.join(folder, image)
            out.append(make_request(image=image, query=str(entry.get("query", "")),
                                    prompt=str(entry.get("prompt", "")), mode=str(entry.get("mode", cfg.mode)),
                                    request_id=str(entry.get("id", "")), where=where))
    seen: dict[str, int] = {}
    for r in out:
        seen[r.request_id] = seen.get(r.request_id, 0) + 1
    twice = sorted(k for k, n in seen.items() if n > 1)
    if twice:
        raise ValueError(f"inputs={cfg.inputs}: request ids used more than once: {twice[:10]}; give each line its "
                         "own \"id\"")
    return out
