"""READ's training mixture: premise modes per image (sem-seg denials/corrections about absent classes, ReasonSeg's
false_premise_QA with its own answers), dataset-first sampling of multi-dataset streams, READ's lower-casing. The rates
are measured over 20,000 conversations drawn through the real loader from real tar shards."""

from __future__ import annotations

import collections
import random

import numpy as np
import pytest
import webdataset as wds

from pipelines.data import templates
from pipelines.data.config import DataConfig, StreamConfig
from pipelines.data.conversation import build_conversations, eval_question
from pipelines.data.premises import PremisePolicy
from pipelines.data.stream import ShardReadPolicy, build_loader
from pipelines.data.transform import ModelInputSpec
from schemas.sample import Query, ShardSample, encode, make_key
from tests.fixtures.data import make_image_bytes, make_refer_sample

SPEC = ModelInputSpec(num_image_tokens=4, clip_image_size=28, sam_image_size=32)
ADE_ABSENT = ["Sky", "tree", "road", "bed"]


def _mask(h, w, k):
    m = np.zeros((h, w), np.uint8)
    m[k : k + 4, k : k + 5] = 1
    return m


def semseg_sample(index: int, dataset: str = "ade20k") -> ShardSample:
    h, w = 24, 30
    queries = [Query(query_id=f"{index}:c{c}", text=name, mask=_mask(h, w, c), query_type="class")
               for c, name in enumerate(["Wall", "floor"])]
    return ShardSample(key=make_key(dataset, "train", index), dataset=dataset, split="train",
                       image_bytes=make_image_bytes(h, w, seed=index), image_format="png", height=h, width=w,
                       queries=queries, source=f"fixture:{index}", extra={"absent_classes": ADE_ABSENT})


def reasonseg_sample(index: int, *, with_fp: bool = True) -> ShardSample:
    h, w = 26, 22
    mask = _mask(h, w, 3)
    queries = [Query(query_id=f"{index}:0", text="What would you sit on?", is_sentence=True, mask=mask),
               Query(query_id=f"{index}:1", text="The Chair", mask=mask)]
    if with_fp:
        queries += [Query(query_id=f"{index}:fp0", text="Where is the Piano?", is_sentence=True, exists=False,
                          query_type="false_premise", extra={"answer": "There is no piano, only a chair."}),
                    Query(query_id=f"{index}:fp1", text="the Lamp", exists=False, query_type="false_premise",
                          extra={"answer": "No lamp here."})]
    return ShardSample(key=make_key("reasonseg", "train", index), dataset="reasonseg", split="train",
                       image_bytes=make_image_bytes(h, w, seed=index), image_format="png", height=h, width=w,
                       queries=queries, source=f"fixture:{index}")


def test_semseg_premise_modes_follow_reads_weights():
    rng = random.Random(0)
    kinds = collections.Counter()
    for _ in range(20_000):
        convs = build_conversations(semseg_sample(0), rng=rng, num_classes_per_sample=2)
        assert len({c.kind for c in convs}) == 1  # one mode per image
        kinds[convs[0].kind] += 1
        for c in convs:
            question, answer = c.turns[0]
            if c.kind == "seg":
                assert "[SEG]" in answer and len(c.masks) == 1
                continue
            assert "[SEG]" not in answer and c.masks == []
            absent = c.meta["absent_class"]
            assert absent in [a.lower() for a in ADE_ABSENT] and absent in question and absent in answer
            if c.kind == "correction":
                assert "wall" in answer or "floor" in answer  # names the present class, lower-cased
    shares = {k: v / 20_000 for k, v in kinds.items()}
    assert abs(shares["seg"] - 0.85) < 0.015 and abs(shares["denial"] - 0.07) < 0.015
    assert abs(shares["correction"] - 0.08) < 0.015


def test_reasonseg_false_premise_mode_uses_the_entries_own_answers():
    rng = random.Random(1)
    modes = collections.Counter()
    for _ in range(20_000):
        convs = build_conversations(reasonseg_sample(0), rng=rng, num_classes_per_sample=3)
        fp = [c for c in convs if c.kind == "correction"]
        assert not fp or len(fp) == len(convs)  # one mode per image
        modes["fp" if fp else "true"] += 1
        for c in fp:
            question, answer = c.turns[0]
            assert answer in ("There is no piano, only a chair.", "No lamp here.") and c.masks == []
            assert ("Where is the Piano?" in question) == (answer.startswith("There is no piano"))
            assert "the Lamp" in question or "Piano" in question  # READ does not lower-case these questions
        for c in convs if not fp else []:
            assert c.query_ids[0].split(":")[1] in ("0", "1") and len(c.masks) == 1
    assert abs(modes["fp"] / 20_000 - 0.15) < 0.015
    plain = random.Random(2)
    assert all(c.kind == "seg" for _ in range(500)
               for c in build_conversations(reasonseg_sample(1, with_fp=False), rng=plain, num_classes_per_sample=2))


def test_parts_named_both_ways_as_read():
    h, w = 12, 12
    q = Query(query_id="1:a5", text="the wheel of the car", mask=_mask(h, w, 2), query_type="part",
              extra={"object": "car", "part": "wheel"})
    s = ShardSample(key=make_key("pascal_part", "train", 1), dataset="pascal_part", split="train",
                    image_bytes=make_image_bytes(h, w, seed=1), image_format="png", height=h, width=w, queries=[q],
                    source="x", extra={"absent_classes": [["dog", "Tail"], "bus"]})
    seen = collections.Counter()
    rng = random.Random(3)
    for _ in range(4000):
        (c,) = build_conversations(s, rng=rng, num_classes_per_sample=1)
        question = c.turns[0][0]
        for phrase in ("car wheel", "the wheel of the car", "dog tail", "the tail of the dog", "bus"):
            seen[phrase] += phrase in question
    assert all(seen[p] > 0 for p in ("car wheel", "the wheel of the car", "dog tail", "the tail of the dog", "bus"))
    assert abs(seen["car wheel"] / (seen["car wheel"] + seen["the wheel of the car"]) - 0.5) < 0.05


def test_other_datasets_draw_no_premise_mode():
    sample = make_refer_sample(3, dataset="refcoco")
    a = build_conversations(sample, rng=random.Random(5), num_classes_per_sample=3,
                            premises=PremisePolicy(semseg_weights=(0.0, 1.0, 0.0), reasonseg_false_premise_share=1.0))
    b = build_conversations(sample, rng=random.Random(5), num_classes_per_sample=3)
    assert [c.turns for c in a] == [c.turns for c in b]


def test_short_queries_lower_cased_as_read_sentences_kept():
    q = Query(query_id="1:1", text="The Red Box ON the Left", mask=_mask(10, 10, 1))
    s = ShardSample(key=make_key("refcoco", "train", 1), dataset="refcoco", split="train",
                    image_bytes=make_image_bytes(10, 10, seed=1), image_format="png", height=10, width=10,
                    queries=[q, Query(query_id="1:2", text="The Blue One", exists=False, gt_sent="The Red Box")],
                    source="x")
    for seed in range(20):
        for c in build_conversations(s, rng=random.Random(seed), num_classes_per_sample=2):
            text = " ".join(c.turns[0])
            assert "the red box" in text and "Red" not in text
    assert "the red box on the left" in eval_question("The Red Box ON the Left", is_sentence=False)
    assert "Where Do I Sit?" in eval_question("Where Do I Sit?", is_sentence=True)
    assert templates.as_prompted("A Cat", is_sentence=False) == "a cat"


def _write(path, samples):
    with wds.TarWriter(str(path)) as sink:
        for s in samples:
            sink.write(encode(s))
    return str(path)


@pytest.fixture(scope="module")
def mixture_shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixture")
    refer = [_write(root / f"{name}-000000.tar", [make_refer_sample(i, dataset=name) for i in range(n)])
             for name, n in (("refclef", 3), ("refcoco", 12), ("refcocog", 6))]  # unequal sizes: shares by weight
    semseg = [_write(root / f"{name}-000000.tar", [semseg_sample(i, name) for i in range(4)])
              for name in ("ade20k", "cocostuff")]
    reason = _write(root / "reasonseg-000000.tar", [reasonseg_sample(i) for i in range(5)])
    return refer, semseg, reason


def test_twenty_thousand_conversations_meet_every_rate(mixture_shards, data_tokenizer):
    refer, semseg, reason = mixture_shards
    cfg = DataConfig(
        streams=[StreamConfig(name="refer_seg", shards="::".join(refer), rate=2, sampling="dataset", weights=[2, 1, 1]),
                 StreamConfig(name="sem_seg", shards="::".join(semseg), rate=1, sampling="dataset"),
                 StreamConfig(name="reason_seg", shards=reason, rate=1)],
        num_workers=0, batch_size=50, shuffle_buffer=8, num_classes_per_sample=1, seed=4)
    loader = build_loader(cfg, ShardReadPolicy(seed=4), tokenizer=data_tokenizer, spec=SPEC)
    metas, n = [], 0
    for batch in loader:
        for meta, masks, ids in zip(batch.meta, batch.masks_C, batch.input_ids_CT):
            metas.append(meta)
            if meta["kind"] in ("denial", "correction"):
                assert masks.shape[0] == 0
                assert int((ids == data_tokenizer.convert_tokens_to_ids("[SEG]")).sum()) == 0
        n = len(metas)
        if n >= 20_000:
            break
    share = lambda pred, among=None: (sum(1 for m in metas if pred(m) and (among is None or among(m)))
                                      / sum(1 for m in metas if among is None or among(m)))
    assert abs(share(lambda m: m["stream"] == "refer_seg") - 0.5) < 0.015
    for name, want in (("refclef", 0.5), ("refcoco", 0.25), ("refcocog", 0.25)):
        assert abs(share(lambda m, d=name: m["dataset"] == d, lambda m: m["stream"] == "refer_seg") - want) < 0.015
    assert abs(share(lambda m: m["dataset"] == "ade20k", lambda m: m["stream"] == "sem_seg") - 0.5) < 0.015
    in_semseg = lambda m: m["stream"] == "sem_seg"
    assert abs(share(lambda m: m["kind"] == "denial", in_semseg) - 0.07) < 0.015
    assert abs(share(lambda m: m["kind"] == "correction", in_semseg) - 0.08) < 0.015
    assert abs(share(lambda m: m["kind"] == "correction", lambda m: m["stream"] == "reason_seg") - 0.15) < 0.015
