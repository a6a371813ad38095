"""Every generated expression is unambiguous for its target(s) (checked from the written files) and typed."""

from __future__ import annotations

import json
import pickle
import warnings

import numpy as np
import pytest
from PIL import Image, ImageOps
from pycocotools import mask as mask_utils

from pipelines.synth.expressions import (APOSTROPHE_TEMPLATE, Expression, Noun, candidates, false_premise, margin_px,
                                         parse, resolve, sentence)
from pipelines.synth.palette import SHAPES
from pipelines.synth.refer import LAYOUT
from pipelines.synth.rng import rng_for
from pipelines.synth.scene import SceneObject, sample_scene


def _obj(index, colour, shape, cx, cy, area=100, mask=None):
    return SceneObject(index=index, colour=colour, shape=shape, polygon=np.zeros((0, 2)), mask=mask, area=area,
                       bbox=(0, 0, 1, 1), cx=cx, cy=cy)


def test_resolver_flags_ambiguity():
    objs = [_obj(0, "red", "circle", 10, 10), _obj(1, "red", "circle", 12, 40), _obj(2, "blue", "square", 50, 30)]
    m = margin_px(64, 64)  # 3.2 px
    assert resolve(parse("the red circle"), objs, m) == [0, 1]  # two red circles: ambiguous
    assert resolve(parse("the leftmost shape"), objs, m) == [0, 1]  # 10 vs 12 is a tie within the margin
    assert resolve(parse("the topmost red circle"), objs, m) == [0]
    assert resolve(parse("the red circle above the blue square"), objs, m) == [0]
    assert resolve(parse("the red circle below the blue square"), objs, m) == [1]
    assert resolve(parse("the shape left of the red circle"), objs, m) is None  # anchor not unique
    assert resolve(parse("the green star"), objs, m) == []
    assert resolve(parse("the largest shape"), objs, m) == [0, 1, 2]  # equal areas
    for target in objs[:2]:
        texts = {e.text() for e in candidates(target, objs, m)}
        assert "the red circle" not in texts and "the leftmost shape" not in texts
        assert texts  # a position word still singles it out


@pytest.mark.parametrize("seed", range(40))
def test_candidates_round_trip_through_text(seed):
    rng = rng_for(seed, "expr-test")
    scene = sample_scene(rng, width=96, height=72, min_objects=2, max_objects=5, noise=0)
    m = margin_px(96, 72)
    for target in scene.objects:
        exprs = candidates(target, scene.objects, m)
        assert exprs, f"object {target} has no unambiguous expression"
        for e in exprs:
            assert parse(e.text()) == e and parse(sentence(rng, e)) == e
            assert parse(sentence(rng, e, APOSTROPHE_TEMPLATE)) == e
            assert resolve(e, scene.objects, m) == [target.index]
            fp = false_premise(rng, e, scene.objects, m)
            if fp is not None:
                assert resolve(fp[0], scene.objects, m) == [] and fp[1] in ("attribute", "object", "relation")


def test_expression_types():
    assert Expression(Noun(colour="red")).type == "colour"
    assert Expression(Noun(shape="star")).type == "shape"
    assert Expression(Noun("red", "star")).type == "colour+shape"
    assert Expression(Noun(), "leftmost").type == "spatial"
    assert Expression(Noun("red", None), "left of", Noun(None, "star")).type == "spatial"
    assert Expression(Noun(), "largest").type == "size"
    assert parse("the red star left of the") is None and parse("a red star") is None


def _objects_from_instances(inst, image):
    anns = sorted((a for a in inst["annotations"] if a["image_id"] == image["id"]), key=lambda a: a["id"])
    objs, index_of = [], {}
    for k, a in enumerate(anns):
        seg = a["segmentation"]  # a polygon list or a list of RLE dicts with str counts (READ's two forms)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            if isinstance(seg[0], list):
                rles = mask_utils.frPyObjects(seg, image["height"], image["width"])
            else:
                rles = [{"size": p["size"], "counts": p["counts"].encode()} for p in seg]
            mask = mask_utils.decode(rles).max(axis=2)
        ys, xs = np.nonzero(mask)
        objs.append(_obj(k, a["colour"], SHAPES[a["category_id"] - 1], xs.mean(), ys.mean(), int(mask.sum())))
        index_of[a["id"]] = k
    return objs, index_of


@pytest.mark.parametrize("name", sorted(LAYOUT))
def test_refer_sentences_resolve_to_their_object(synth_root, name):
    folder = synth_root / "refer_seg" / name
    inst = json.loads((folder / "instances.json").read_text())
    (refs_file,) = folder.glob("refs(*).p")
    with open(refs_file, "rb") as f:
        refs = pickle.load(f)
    images = {im["id"]: im for im in inst["images"]}
    types = set()
    for ref in refs:
        image = images[ref["image_id"]]
        objs, index_of = _objects_from_instances(inst, image)
        m = margin_px(image["width"], image["height"])
        for s in ref["sentences"]:
            expr = parse(s["sent"])
            assert expr is not None, f"{name} sentence {s['sent']!r} is outside the grammar"
            types.add(s["type"])
            absent = s["type"] in ("negative", "false_premise")
            assert resolve(expr, objs, m) == ([] if absent else [index_of[ref["ann_id"]]]), (name, s)
            if not absent:
                assert s["type"] == expr.type
            if s.get("gt_sent") and absent:
                assert resolve(parse(s["gt_sent"]), objs, m) == [index_of[ref["ann_id"]]]
    expected = {"colour", "shape", "colour+shape", "size"} | (set() if name.endswith("+") else {"spatial"})
    expected |= {"R": {"negative"}, "f": {"false_premise"}}.get(name[0], set())
    assert expected <= types


def test_reasonseg_texts_resolve_to_their_targets(synth_root):
    n = 0
    apostrophes = 0
    for path in sorted((synth_root / "reason_seg/ReasonSeg").glob("*/*.json")):
        data = path.read_bytes()
        try:
            record = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError:  # one cp1252 file per split, read as READ does
            record = json.loads(data.decode("cp1252"))
            apostrophes += "\u2019" in record["text"][0]
        objs = [_obj(o["index"], o["colour"], o["shape"], *o["centre"], o["area"]) for o in record["objects"]]
        assert len(objs) >= 2
        with Image.open(path.with_suffix(".jpg")) as img:
            upright = ImageOps.exif_transpose(img)
            assert upright.size == (record["imageWidth"], record["imageHeight"])
        m = margin_px(*upright.size)
        for text, kind in zip(record["text"], record["query_types"]):
            expr = parse(text)
            assert expr is not None and expr.type == kind
            assert resolve(expr, objs, m) == sorted(record["target_indices"]), (path.name, text)
            n += 1
    assert n > 0 and apostrophes == 2
