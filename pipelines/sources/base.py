"""What every raw-dataset reader produces: work units (cheap index), loaded samples, and typed rejections.

A reader works in two passes so that sharding can be planned deterministically before any heavy work:

1. `index()` (driver, cheap): list every sample unit in the raw data with a sort key, how many input queries it
   accounts for and an upper estimate of its encoded size; records that are already known to be bad become
   `Reject`s here.
2. `load(unit)` (worker): read the image, rasterise/decode the masks and return a `LoadResult` (the sample and/or
   the rejects for the queries that could not be kept). A reader never writes.

Accounting: for every unit, queries in `LoadResult.sample` + `num_queries` of `LoadResult.rejects` ==
`unit.num_queries` (when the unit knows it up front; `None` means "known only after loading", e.g. ADE20K classes).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image, UnidentifiedImageError

from pipelines.data.image import decode_rgb, upright_size
from schemas.sample import ShardSample


@dataclass(frozen=True, kw_only=True)
class Reject:
    """One quarantined record: a whole sample, a ref/query of an otherwise good sample, or a whole file.

    Attributes:
        source: the raw file the bad record came from.
        key: whatever identifies the record (sample key, "ref <id>", query id, the file itself).
        num_queries: input queries this reject accounts for (0 for records whose queries cannot be counted).
        reason: "code: detail", the code is short and machine-groupable (e.g. "missing_image: ...").
    """

    source: str
    key: str
    num_queries: int
    reason: str

    @property
    def code(self) -> str:
        """The machine-groupable part of `reason` (before the first ':')."""
        return self.reason.split(":", 1)[0].strip()


@dataclass(frozen=True, kw_only=True)
class WorkUnit:
    """One future shard sample as found by the index pass. Picklable and JSON-able (`payload`).

    Attributes:
        key: the sample key (schemas.sample.make_key); samples are ordered by it.
        source: the raw file(s) the unit comes from (for rejects and error messages).
        num_queries: input queries the unit accounts for, or None when only loading can tell.
        est_bytes: upper estimate of the sample's size inside a tar (used to cut shards by bytes).
        payload: JSON-able data the reader's `load` needs (paths, parsed annotations).
    """

    key: str
    source: str
    num_queries: int | None
    est_bytes: int
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class LoadResult:
    """What `Source.load` returns: the sample (None when the whole unit is rejected) and the rejects."""

    sample: ShardSample | None = None
    rejects: list[Reject] = field(default_factory=list)

    @property
    def num_queries(self) -> int:
        """Input queries accounted for by this result (kept + rejected)."""
        kept = self.sample.num_queries if self.sample is not None else 0
        return kept + sum(r.num_queries for r in self.rejects)


class Source(Protocol):
    """A reader for one raw dataset + split. Implementations are picklable dataclasses (shipped to Ray workers)."""

    dataset: str
    split: str

    def index(self) -> tuple[list[WorkUnit], list[Reject]]:
        """Cheap pass over the raw data: the sample units (sorted by key) and records rejected up front."""
        ...

    def load(self, unit: WorkUnit) -> LoadResult:
        """Read and decode one unit into a schema sample; never raises for bad data (returns rejects)."""
        ...


def iter_samples(source: Source) -> Iterator[ShardSample | Reject]:
    """Stream a source: every good sample and every reject, in key order (index rejects first).

    This is the reader interface other pipelines use (e.g. evaluation over REFER refs); it holds one sample at a time.
    """
    units, rejects = source.index()
    yield from rejects
    for unit in units:
        result = source.load(unit)
        yield from result.rejects
        if result.sample is not None:
            yield result.sample


class BadImageError(ValueError):
    """The image file is missing, cannot be decoded or has another size than recorded; the message starts with the
    reject code."""

    @property
    def code(self) -> str:
        """The reject code: missing_image | bad_image | size_mismatch."""
        return str(self).split(":", 1)[0]


def read_image(
    path: str, *, recorded: tuple[int, int] | None = None, recorded_by: str = ""
) -> tuple[bytes, str, int, int]:
    """Read an image file and fully decode it once, as READ does (EXIF orientation applied), to prove it is not corrupt.

    Returns (original bytes, "jpeg" | "png", height, width), the size being the upright (EXIF-oriented) one that every
    consumer of the bytes sees (`pipelines.data.image.decode_rgb`). Raises BadImageError("missing_image: ...",
    "bad_image: ..." or, when `recorded` (height, width) is given and differs from the upright size,
    "size_mismatch: ..." naming `recorded_by`, the annotation file that records it) naming the file.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError as err:
        raise BadImageError(f"missing_image: {path} does not exist") from err
    except OSError as err:
        raise BadImageError(f"missing_image: {path} cannot be read: {err}") from err
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = (img.format or "").lower()
        height, width = decode_rgb(data).shape[:2]
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise BadImageError(f"bad_image: {path} cannot be decoded ({type(err).__name__}: {err})") from err
    if fmt not in ("jpeg", "png"):
        raise BadImageError(f"bad_image: {path} is {fmt or 'unknown'}, only JPEG and PNG are supported")
    if recorded is not None and tuple(int(v) for v in recorded) != (height, width):
        raise BadImageError(
            f"size_mismatch: {path} decodes (EXIF orientation applied, as READ's cv2.imread) to {height}x{width} "
            f"(HxW), {recorded_by} records {recorded[0]}x{recorded[1]}; the masks would not line up, fix the "
            "annotation or the image")
    return data, fmt, height, width


def image_size(path: str) -> tuple[int, int] | None:
    """Upright (height, width) from the image header only (cheap), or None when the file is missing or unreadable."""
    try:
        with Image.open(path) as img:
            return upright_size(img)
    except (FileNotFoundError, UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def estimate_bytes(image_bytes: int, height: int, width: int, num_masks: int) -> int:
    """Upper estimate of a sample's size in a tar: image + 3 tar headers/padding + JSON + compressed masks.

    Binary masks deflate to well under 1/16 of their raw size, so H*W/16 per mask over-estimates.
    """
    return image_bytes + 3 * 1024 + 2048 + num_masks * (height * width // 16 + 512)
