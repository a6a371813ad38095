"""Schema round trips: encode -> real tar on disk -> webdataset -> decode == original; tables validate."""

import io

import numpy as np
import pyarrow as pa
import pytest
import webdataset as wds
from PIL import Image

from schemas import SCHEMA_VERSION
from schemas.results import QUERY_SCHEMA, QUERY_TABLE_VERSION, SUMMARY_SCHEMA, validate_summary
from schemas.sample import Query, ShardSample, decode, encode, make_key


def _jpeg(h: int, w: int, rng: np.random.Generator) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def _sample(i: int) -> ShardSample:
    rng = np.random.default_rng(i)
    h, w = 7 + i, 9
    mask = rng.integers(0, 2, (h, w)).astype(np.uint8)
    mask[0, 0] = 255
    return ShardSample(
        key=make_key("refcoco", "val", f"COCO_{i}.jpg"),
        dataset="refcoco",
        split="val",
        image_bytes=_jpeg(h, w, rng),
        image_format="jpeg",
        height=h,
        width=w,
        queries=[
            Query(query_id=f"{i}:1", text="the red circle", mask=mask, query_type="colour+shape", ann_id=3),
            Query(query_id=f"{i}:2", text="the blue star", exists=False, gt_sent="the red circle", edit="object"),
        ],
        source="refer_seg/refcoco/refs(unc).p",
        extra={"objects": [1, 2]},
    )


def test_round_trip_through_a_real_tar(tmp_path):
    samples = [_sample(i) for i in range(3)]
    path = str(tmp_path / "shard-000000.tar")
    with wds.TarWriter(path) as sink:
        for s in samples:
            sink.write(encode(s))
    back = [decode(raw) for raw in wds.WebDataset(path, shardshuffle=False)]
    assert [b.key for b in back] == [s.key for s in samples]
    for s, b in zip(samples, back):
        assert b.image_bytes == s.image_bytes
        assert (b.queries[0].mask == s.queries[0].mask).all() and b.queries[0].mask.dtype == np.uint8
        assert b.queries[1].mask is None and b.queries[1].gt_sent == "the red circle"
        assert encode(b) == encode(s)


def test_encode_is_deterministic():
    assert encode(_sample(1)) == encode(_sample(1))


def test_validate_names_the_sample_and_problem():
    s = _sample(0)
    s.queries[0].mask = s.queries[0].mask[:-1]
    with pytest.raises(ValueError, match=r"refcoco-val-COCO_0_jpg.*mask must be uint8"):
        encode(s)
    s = _sample(0)
    s.key = "has.dot"
    with pytest.raises(ValueError, match="no dots"):
        encode(s)


def test_decode_rejects_unknown_schema_version():
    raw = encode(_sample(0))
    raw["json"] = raw["json"].replace(
        f'"schema_version": {SCHEMA_VERSION}'.encode(), b'"schema_version": 999'
    )
    raw["__url__"] = "s3://bkt/shard-000001.tar"
    with pytest.raises(ValueError, match=r"shard-000001.tar.*schema_version 999"):
        decode(raw)


def test_result_tables_validate_and_name_columns():
    summary = pa.Table.from_pylist(
        [dict.fromkeys(SUMMARY_SCHEMA.names, None) | {"dataset": "refcoco", "n": 3, "giou": 0.5}]
    )
    assert validate_summary(summary).schema.metadata[b"schema_version"] == b"2"  # gained protocol, checkpoint_hash
    assert QUERY_SCHEMA.metadata[b"schema_version"] == str(QUERY_TABLE_VERSION).encode() == b"3"  # gained protocol
    assert {"protocol", "prompt", "template_id"} <= set(QUERY_SCHEMA.names)
    assert {"protocol", "checkpoint_hash"} <= set(SUMMARY_SCHEMA.names)
    with pytest.raises(ValueError, match=r"missing \['giou'\]"):
        validate_summary(summary.drop_columns(["giou"]))
    assert "pred_mask_rle" in QUERY_SCHEMA.names
