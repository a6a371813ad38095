"""Length grouping (DataConfig.group_by_length): less padding, every [SEG] still paired with its own mask and every
conversation with its own image, every example exactly once (the tail included), the same batches for the same seed.

The hand-built examples carry their identity everywhere the loader must keep it together: the question text names
the example and the conversation ("item 7 conv 1"), the CLIP and SAM images are filled with the example's number, the
original size differs per example, and the k-th mask of a conversation spells (example, conversation, k) in binary
in its first pixels. After the real `collate`, each row's identity is read back from its token ids alone.
"""

from __future__ import annotations

import random
import re

import pytest
import torch

from pipelines.data.bucketing import example_length, fixed_batches, length_grouped_batches
from pipelines.data.collate import Example, collate
from pipelines.data.config import DataConfig, StreamConfig
from pipelines.data.conversation import build_prompt
from pipelines.data.stream import ShardReadPolicy, build_loader
from pipelines.data.templates import IMAGE_TOKEN, SEG_TOKEN
from pipelines.data.tokenize import IGNORE_INDEX, tokenize
from pipelines.data.transform import ModelInputSpec
from schemas.batch import TrainBatch
from tests.fixtures.data import write_tiny_shards

NUM_IMAGE_TOKENS = 4
CODE_BITS = 16
FILLER = "with the small handle next to the round wooden table under the window"


def mask_code(example: int, conv: int, k: int) -> int:
    return example * 100 + conv * 10 + k


def coded_mask(code: int, height: int, width: int) -> torch.Tensor:
    """A {0, 1} (H, W) mask whose first CODE_BITS pixels (row-major) are `code` in binary."""
    mask = torch.zeros(height * width)
    mask[:CODE_BITS] = torch.tensor([(code >> b) & 1 for b in range(CODE_BITS)], dtype=torch.float32)
    return mask.view(height, width)


def read_code(mask_HW: torch.Tensor) -> int:
    bits = mask_HW.flatten()[:CODE_BITS].tolist()
    return sum(int(v) << b for b, v in enumerate(bits))


def make_example(tokenizer, i: int, *, long: bool, num_convs: int, rng: random.Random) -> Example:
    """Example i: `num_convs` conversations, conversation c answering with (i + c) % 3 [SEG]s; long ones repeat the
    filler several times, short ones not at all."""
    height, width = 8 + i % 5, 6 + i % 7
    ids_list, labels_list, masks_list = [], [], []
    for c in range(num_convs):
        filler = " ".join([FILLER] * rng.randint(3, 5)) if long else ""
        question = f"{IMAGE_TOKEN}\nPlease segment item {i} conv {c} {filler}".rstrip() + "."
        num_seg = (i + c) % 3
        answer = "Sure, " + (", ".join([SEG_TOKEN] * num_seg) if num_seg else "there is none") + "."
        ids, labels = tokenize(build_prompt([(question, answer)]), tokenizer, NUM_IMAGE_TOKENS)
        ids_list.append(ids)
        labels_list.append(labels)
        masks_list.append(torch.stack([coded_mask(mask_code(i, c, k), height, width) for k in range(num_seg)])
                          if num_seg else torch.zeros(0, height, width))
    return Example(
        key=f"ex{i}", clip_image_3CC=torch.full((3, 4, 4), float(i)), sam_image_3SS=torch.full((3, 6, 6), float(i)),
        resized_size=(i, i + 1), original_size=(height, width), input_ids=ids_list, labels=labels_list,
        masks=masks_list, query_ids=[[f"{i}:{c}"] for c in range(num_convs)],
        meta=[{"example": i, "conv": c} for c in range(num_convs)],
    )


def mixture(tokenizer, n: int, *, seed: int = 0) -> list[Example]:
    """n examples, about a third of them long, in a random order, with 1 to 3 conversations each."""
    rng = random.Random(seed)
    return [make_example(tokenizer, i, long=rng.random() < 0.35, num_convs=rng.randint(1, 3), rng=rng)
            for i in range(n)]


def padding_tokens(batches: list[TrainBatch]) -> int:
    return sum(int((b.attention_mask_CT == 0).sum()) for b in batches)


def collated(groups, pad_id: int) -> list[TrainBatch]:
    return [collate(g, pad_token_id=pad_id) for g in groups]


def check_alignment(batch: TrainBatch, tokenizer, seg_id: int) -> list[tuple[int, int]]:
    """Assert every row's [SEG]s, masks, image, sizes, key and query ids belong to the example its tokens name;
    returns the (example, conversation) of each row."""
    seen = []
    for row in range(batch.num_conversations):
        ids = batch.input_ids_CT[row][batch.attention_mask_CT[row].bool()]
        match = re.search(r"item (\d+) conv (\d+)", tokenizer.decode(ids, skip_special_tokens=False))
        assert match, "every row names its example and conversation"
        i, c = int(match.group(1)), int(match.group(2))
        seen.append((i, c))
        image = int(batch.image_index_C[row])
        assert batch.keys[image] == f"ex{i}" and batch.query_ids[row] == [f"{i}:{c}"]
        assert batch.meta[row] == {"example": i, "conv": c}
        assert torch.all(batch.clip_images_I3CC[image] == i) and torch.all(batch.sam_images_I3SS[image] == i)
        assert batch.resized_sizes[image] == (i, i + 1)
        height, width = batch.original_sizes[image]
        assert (height, width) == (8 + i % 5, 6 + i % 7)
        num_seg = int((ids == seg_id).sum())
        masks = batch.masks_C[row]
        assert num_seg == (i + c) % 3 == masks.shape[0]
        assert masks.shape[1:] == (height, width)
        for k in range(num_seg):  # the k-th [SEG] of the row is trained against mask k of the same row
            assert read_code(masks[k]) == mask_code(i, c, k)
        supervised = batch.labels_CT[row] != IGNORE_INDEX
        assert torch.equal(batch.labels_CT[row][supervised], batch.input_ids_CT[row][supervised])
    return seen


@pytest.fixture(scope="module")
def examples(data_tokenizer):
    return mixture(data_tokenizer, 64)


def test_mixture_has_long_and_short_examples(examples):
    lengths = sorted(example_length(e) for e in examples)
    assert lengths[-1] > 2 * lengths[0]


def test_grouping_reduces_padding(examples, data_tokenizer):
    pad = data_tokenizer.pad_token_id
    plain = collated(fixed_batches(examples, 4), pad)
    grouped = collated(length_grouped_batches(examples, batch_size=4, buffer_size=32, rng=random.Random(0)), pad)
    assert len(plain) == len(grouped) == 16
    assert sum(b.num_conversations for b in plain) == sum(b.num_conversations for b in grouped)
    # The same real tokens in both, far fewer padding tokens when grouped.
    assert sum(int(b.attention_mask_CT.sum()) for b in plain) == sum(int(b.attention_mask_CT.sum()) for b in grouped)
    assert padding_tokens(grouped) < 0.5 * padding_tokens(plain), (padding_tokens(grouped), padding_tokens(plain))
    # A bigger buffer groups at least as well on this mixture.
    wide = collated(length_grouped_batches(examples, batch_size=4, buffer_size=64, rng=random.Random(0)), pad)
    assert padding_tokens(wide) <= padding_tokens(grouped)


def test_every_seg_keeps_its_mask_and_image(examples, data_tokenizer):
    seg_id = int(data_tokenizer.convert_tokens_to_ids(SEG_TOKEN))
    groups = list(length_grouped_batches(examples, batch_size=4, buffer_size=16, rng=random.Random(1)))
    assert [e.key for g in groups for e in g] != [e.key for e in examples]  # really reordered
    rows = []
    for batch in collated(groups, data_tokenizer.pad_token_id):
        rows += check_alignment(batch, data_tokenizer, seg_id)
    expected = sorted((i, c) for i, e in enumerate(examples) for c in range(len(e.input_ids)))
    assert sorted(rows) == expected
    assert sum(1 for i, c in rows if (i + c) % 3) > 20  # many rows with [SEG]s were checked


@pytest.mark.parametrize("n, batch_size, buffer_size", [(23, 4, 8), (64, 4, 32), (5, 4, 8), (1, 2, 4), (0, 2, 4),
                                                          (10, 3, 7)])
def test_every_example_exactly_once_tail_included(data_tokenizer, n, batch_size, buffer_size):
    examples = mixture(data_tokenizer, n, seed=n)
    groups = list(length_grouped_batches(iter(examples), batch_size=batch_size, buffer_size=buffer_size,
                                         rng=random.Random(0)))
    keys = [e.key for g in groups for e in g]
    assert sorted(keys) == sorted(e.key for e in examples) and len(keys) == len(set(keys))
    assert len(groups) == -(-n // batch_size)  # as many batches as without grouping
    assert sum(len(g) < batch_size for g in groups) == (1 if n % batch_size else 0)
    assert all(0 < len(g) <= batch_size for g in groups)
    assert all(g is not h for g in groups for h in groups if g is not h)


def test_grouped_batches_are_deterministic_given_the_seed(examples, data_tokenizer):
    def keys(seed: int) -> list[list[str]]:
        return [[e.key for e in g] for g in length_grouped_batches(examples, batch_size=4, buffer_size=16,
                                                                    rng=random.Random(seed))]

    assert keys(3) == keys(3)
    assert keys(3) != keys(4)
    assert sorted(map(sorted, keys(3))) == sorted(map(sorted, keys(4)))  # the same groups, another order
    pad = data_tokenizer.pad_token_id
    a = collated(length_grouped_batches(examples, batch_size=4, buffer_size=16, rng=random.Random(3)), pad)
    b = collated(length_grouped_batches(examples, batch_size=4, buffer_size=16, rng=random.Random(3)), pad)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.input_ids_CT, y.input_ids_CT) and all(
            torch.equal(m, n) for m, n in zip(x.masks_C, y.masks_C, strict=True))


def test_config_validates_the_buffer():
    assert DataConfig().group_by_length is False
    DataConfig(group_by_length=True, batch_size=4, length_group_buffer=8)
    with pytest.raises(ValueError, match="length_group_buffer"):
        DataConfig(group_by_length=True, batch_size=4, length_group_buffer=7)
    with pytest.raises(ValueError, match="length_group_buffer"):
        DataConfig(length_group_buffer=-1)


SPEC = ModelInputSpec(num_image_tokens=4, clip_image_size=28, sam_image_size=32)


def _loader_batches(urls, tokenizer, **opts) -> list[TrainBatch]:
    cfg = DataConfig(streams=[StreamConfig(name="refer", shards="::".join(urls))], num_workers=0, batch_size=2,
                     shuffle_buffer=4, resampled=False, num_classes_per_sample=2, **opts)
    return list(build_loader(cfg, ShardReadPolicy(seed=5), tokenizer=tokenizer, spec=SPEC))


def _per_key(batches: list[TrainBatch]) -> dict[str, list[tuple]]:
    """key -> per conversation (unpadded ids, labels, masks, query ids) and its image, from the collated batches."""
    out: dict[str, list[tuple]] = {}
    for b in batches:
        for row in range(b.num_conversations):
            image = int(b.image_index_C[row])
            keep = b.attention_mask_CT[row].bool()
            out.setdefault(b.keys[image], []).append(
                (b.input_ids_CT[row][keep], b.labels_CT[row][keep], b.masks_C[row], b.query_ids[row],
                 b.clip_images_I3CC[image], b.sam_images_I3SS[image], b.original_sizes[image]))
    return out


def test_loader_with_group_by_length_moves_whole_examples(tmp_path, data_tokenizer):
    """End to end on real shards (one pass): the same examples as without grouping, each exactly once, each with
    its own conversations, masks and images; less padding."""
    urls = write_tiny_shards(tmp_path, prefix="g", num_shards=2, per_shard=9, vqa_every=3)
    plain = _loader_batches(urls, data_tokenizer)
    grouped = _loader_batches(urls, data_tokenizer, group_by_length=True, length_group_buffer=8)
    assert _loader_batches(urls, data_tokenizer, group_by_length=True, length_group_buffer=8)[0].keys == grouped[0].keys
    plain_keys = [k for b in plain for k in b.keys]
    grouped_keys = [k for b in grouped for k in b.keys]
    assert len(plain_keys) == 18 and sorted(grouped_keys) == sorted(plain_keys) and grouped_keys != plain_keys
    assert len(grouped) == len(plain) == 9
    a, b = _per_key(plain), _per_key(grouped)
    assert a.keys() == b.keys()
    for key in a:
        assert len(a[key]) == len(b[key])
        for x, y in zip(a[key], b[key], strict=True):
            for u, v in zip(x, y, strict=True):
                assert torch.equal(u, v) if isinstance(u, torch.Tensor) else u == v
    assert padding_tokens(grouped) < padding_tokens(plain)
