"""Length grouping of the training stream (`DataConfig.group_by_length`): batches of examples of similar length, so
that less of each batch is padding.

    examples --(buffer of `buffer_size`, sorted by length)--> batches of `batch_size` --(seeded shuffle)--> batches

The streaming counterpart of transformers' `LengthGroupedSampler` (whose "megabatches" are index lists): a stream has no
index, so the examples themselves are buffered. Only whole `Example`s move: an example keeps its image, its
conversations and, per conversation, its masks in [SEG] order, so collation pairs every [SEG] with its own mask and
every conversation with its own image exactly as without grouping. Every example comes out exactly once; when the
stream ends, what is left in the buffer is sorted and batched the same way (one last batch may be smaller).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator

from pipelines.data.collate import Example


def example_length(example: Example) -> int:
    """The length an example pads its batch to: its longest conversation in tokens (image tokens included);
    `collate` right-pads every conversation of a batch to the batch's longest."""
    return max((int(ids.shape[0]) for ids in example.input_ids), default=0)


def fixed_batches(examples: Iterable[Example], batch_size: int) -> Iterator[list[Example]]:
    """Batches of `batch_size` examples in arrival order, the last one smaller if the stream ends mid-batch."""
    pending: list[Example] = []
    for example in examples:
        pending.append(example)
        if len(pending) == batch_size:
            yield pending
            pending = []
    if pending:
        yield pending


def length_grouped_batches(examples: Iterable[Example], *, batch_size: int, buffer_size: int,
                           rng: random.Random) -> Iterator[list[Example]]:
    """Batches of `batch_size` examples of similar `example_length`.

    Holds up to `buffer_size` examples (rounded up to a multiple of `batch_size`); when the buffer is full, sorts it
    by length (stable: equal lengths keep their arrival order), cuts it into batches and yields them in an order
    shuffled by `rng` (so training does not see lengths rise batch after batch). The same examples and rng state
    give the same batches.
    """
    if batch_size <= 0:
        raise ValueError(f"length_grouped_batches: batch_size must be > 0, got {batch_size}")
    capacity = max(1, -(-buffer_size // batch_size)) * batch_size
    buffer: list[Example] = []
    for example in examples:
        buffer.append(example)
        if len(buffer) == capacity:
            yield from _sorted_batches(buffer, batch_size, rng)
            buffer = []
    if buffer:
        yield from _sorted_batches(buffer, batch_size, rng)


def _sorted_batches(buffer: list[Example], batch_size: int, rng: random.Random) -> list[list[Example]]:
    ordered = sorted(buffer, key=example_length)
    batches = [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
    rng.shuffle(batches)
    return batches
