"""model.sasp_read (SasP with READ's arithmetic) vs READ's own SasP values (the read-tiny oracle, set A).

The oracle (`$READ_TINY_REF`, default ../shared/reference/read-tiny beside the repository) stores, for every case
with a [SEG] token and for both precisions, the similarity map READ fed to `similarity_map_to_points` (bf16 values
stored as float32) and READ's intermediate values: the -1-padded cell grid, the positive / negative / neutral
indices, the selected cells, the integer cell centres, the labels, the refined points and origin_sm[::4, ::4].
Fed the stored map in its native dtype, `read_sasp_trace` must reproduce all of them (exactly for grids, indices,
centres and labels; points within 1e-4 px, origin_sm within 1e-6).

`test_exact_sasp_is_detected` shows the comparison can fail: model.sasp (exact arithmetic, stable sorts) orders
tied bf16 cells differently. The refinement is also checked bit for bit against a literal per-point loop.
Fast (a few seconds), CPU only.
"""

from __future__ import annotations

import functools
import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model import sasp_read
from model.sasp import similarity_to_points
from model.sasp_read import read_canvas_pad, read_sasp_trace, read_similarity_to_points
from tests.read_tiny import REF

GOLD = REF / "golden"
if not (GOLD / "cases.json").is_file():
    pytest.skip(f"READ oracle not found at {REF} (set READ_TINY_REF)", allow_module_level=True)

CASES = json.loads((GOLD / "cases.json").read_text())["cases"]
PRECISIONS = ("fp32", "bf16")
NATIVE_DTYPE = {"fp32": torch.float32, "bf16": torch.bfloat16}
EXACT_FIELDS = (
    "grid",
    "pos_indices",
    "neg_indices",
    "neutral_indices",
    "selected_indices",
    "discrete_points",
    "labels",
)
POINT_ATOL = 1e-4  # px
ORIGIN_SM_ATOL = 1e-6


@functools.cache
def golden(prec: str, case: str) -> dict[str, np.ndarray]:
    with np.load(GOLD / prec / f"{case}.npz") as z:
        return {k: z[k] for k in z.files}


def has_map(prec: str, case: str) -> bool:
    return "similarity" in golden(prec, case)


def image_size(case: str) -> tuple[int, int]:
    h, w = CASES[case]["common"]["sasp_shape_arg"]
    return int(h), int(w)


def native_similarity(prec: str, case: str) -> torch.Tensor:
    """The stored (P,) map in READ's dtype (bf16 values are stored exactly as float32)."""
    return torch.from_numpy(golden(prec, case)["similarity"]).to(NATIVE_DTYPE[prec])


@functools.cache
def trace(prec: str, case: str) -> dict[str, torch.Tensor]:
    return read_sasp_trace(native_similarity(prec, case), image_size(case))


def point_diff(points: torch.Tensor, gold: dict[str, np.ndarray]) -> float:
    return float((points.float() - torch.from_numpy(gold["sasp_points"])).abs().max())


def mismatches(points: torch.Tensor, labels: torch.Tensor, gold: dict[str, np.ndarray]) -> list[str]:
    """What a SasP result (n, 2) points / (n,) labels gets wrong against the oracle: discrete part and points."""
    bad = []
    ref_discrete = torch.from_numpy(gold["sasp_discrete_points"])
    if points.shape != ref_discrete.shape or not torch.equal(points.round().long(), ref_discrete):
        bad.append("discrete_points")
    if not torch.equal(labels, torch.from_numpy(gold["sasp_labels"])):
        bad.append("labels")
    if points.shape == ref_discrete.shape and point_diff(points, gold) > POINT_ATOL:
        bad.append("points")
    return bad


CASE_PARAMS = [pytest.param(prec, case, id=f"{prec}-{case}") for prec in PRECISIONS for case in sorted(CASES)]


@pytest.mark.parametrize("prec, case", CASE_PARAMS)
def test_trace_matches_oracle(prec: str, case: str):
    if not has_map(prec, case):
        pytest.skip(f"{case} has no similarity map (no [SEG] generated)")
    gold = golden(prec, case)
    tr = trace(prec, case)
    for field in EXACT_FIELDS:
        ref = torch.from_numpy(gold[f"sasp_{field}"])
        ours = tr[field]
        assert ours.shape == ref.shape and ours.dtype == ref.dtype, f"{field}: {ours.shape}/{ours.dtype} vs {ref.shape}"
        assert torch.equal(ours, ref), f"{prec} {case}: {field} differs from READ's"
    assert tr["points"].dtype == torch.float32
    assert point_diff(tr["points"], gold) <= POINT_ATOL
    origin_diff = float((tr["origin_sm"][::4, ::4] - torch.from_numpy(gold["sasp_origin_sm_sub4"])).abs().max())
    assert tr["origin_sm"].shape == image_size(case)
    assert origin_diff <= ORIGIN_SM_ATOL, f"{prec} {case}: origin_sm differs by {origin_diff}"


@pytest.mark.parametrize("prec", PRECISIONS)
def test_max_point_difference(prec: str):
    """Max |points - READ's points| over every case of one precision (printed with -s)."""
    diffs = {c: point_diff(trace(prec, c)["points"], golden(prec, c)) for c in sorted(CASES) if has_map(prec, c)}
    assert diffs
    print(f"\n[{prec}] max |points - READ| per case (px): {diffs}; max {max(diffs.values()):.3g}")
    assert max(diffs.values()) <= POINT_ATOL, diffs


@pytest.mark.parametrize("prec", PRECISIONS)
def test_batched_api_matches_oracle(prec: str):
    """The batched API on maps of different image sizes at once (the largest image left out to stay fast)."""
    cases = ["tf_reasonseg_a0", "tf_refcoco_a2_0", "tf_reasonseg_a1"]
    sim_BP = torch.stack([native_similarity(prec, c) for c in cases])
    points, labels = read_similarity_to_points(sim_BP, [image_size(c) for c in cases])
    assert points.shape == (len(cases), 30, 2) and points.dtype == torch.float32
    assert labels.shape == (len(cases), 30) and labels.dtype == torch.long
    for b, case in enumerate(cases):
        gold = golden(prec, case)
        assert torch.equal(labels[b], torch.from_numpy(gold["sasp_labels"])), case
        assert torch.equal(points[b], trace(prec, case)["points"]), case
        assert point_diff(points[b], gold) <= POINT_ATOL, case


@pytest.mark.parametrize("case", sorted(CASES))
def test_canvas_pads_match_oracle(case: str):
    common = CASES[case]["common"]
    if "sasp_pad_h" not in common:
        pytest.skip("no SasP scalars for this case")
    assert read_canvas_pad(image_size(case), common["sasp_target_size"]) == (common["sasp_pad_h"], common["sasp_pad_w"])


def test_canvas_crops_333_px_side():
    """READ's float canvas: 333 * (336 / 333) = 335.99999999999994 -> 335 -> pad -1 (F.pad crops)."""
    assert read_canvas_pad((500, 333), 336) == (84, -1)
    assert read_canvas_pad((500, 333), 12) == (3, 0)


def test_exact_sasp_is_detected():
    """model.sasp (exact arithmetic, stable sorts) must fail the oracle comparison somewhere; READ numerics nowhere."""
    failures = {}
    for prec in PRECISIONS:
        for case in sorted(CASES):
            if not has_map(prec, case):
                continue
            gold = golden(prec, case)
            sim_1P = native_similarity(prec, case)[None]
            exact_points, exact_labels = similarity_to_points(sim_1P, [image_size(case)])
            bad = mismatches(exact_points[0], exact_labels[0], gold)
            if bad:
                failures[(prec, case)] = bad
            tr = trace(prec, case)
            assert mismatches(tr["points"], tr["labels"], gold) == [], (prec, case)
    assert failures, "model.sasp matches READ's points everywhere: the oracle comparison cannot detect an error"


# --- literal per-point forms of READ's steps 4-5 (one 0-d tensor at a time, 1-D sums) ------------------------------


def literal_centres(selected: torch.Tensor, grid_shape: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    h, w = grid_shape
    H, W = size
    bound_x = torch.tensor(float(W - 1))
    bound_y = torch.tensor(float(H - 1))
    rows = []
    for idx in selected:
        x = min((idx % w + 0.5) * (float(W) / w), bound_x)
        y = min((idx // w + 0.5) * (float(H) / h), bound_y)
        rows.append([int(x.item()), int(y.item())])
    return torch.tensor(rows, dtype=torch.long).reshape(-1, 2)


def literal_refine(origin_sm: torch.Tensor, discrete: torch.Tensor) -> torch.Tensor:
    H, W = origin_sm.shape
    probs = F.softmax(origin_sm.reshape(-1), dim=0)
    xs = torch.arange(W).float().repeat(H)
    ys = torch.arange(H).float().repeat_interleave(W)
    out = []
    for px, py in discrete:
        weights = torch.exp(-((xs - px) ** 2 + (ys - py) ** 2)) * probs
        weights = weights / weights.sum()
        out.append(torch.stack([(xs * weights).sum(), (ys * weights).sum()]))
    return torch.stack(out)


@pytest.fixture
def threads():
    """Set torch's intra-op thread count inside a test; restored afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def literal_maps():
    """(similarity, image size, num_points) maps: an oracle map (the cropping 333 px side) and random ones."""
    gen = torch.Generator().manual_seed(0)
    return [
        (native_similarity("bf16", "tf_refcoco_a2_0"), image_size("tf_refcoco_a2_0"), 30),
        (torch.randn(576, generator=gen), (61, 83), 30),
        (torch.randn(576, generator=gen).to(torch.bfloat16), (97, 211), 7),
        (torch.randn(64, generator=gen), (131, 45), 1),
    ]


@pytest.mark.parametrize("chunk_elements", [sasp_read.REFINE_CHUNK_ELEMENTS, 1])
def test_refinement_bit_identical_to_literal_loop(threads, monkeypatch, chunk_elements):
    """Chunked refinement == READ's per-point loop on one thread, bit for bit, whatever our thread count.

    chunk_elements=1 forces 2-point chunks, so an odd point count exercises the overlapping last chunk.
    """
    monkeypatch.setattr(sasp_read, "REFINE_CHUNK_ELEMENTS", chunk_elements)
    for sim_P, size, k in literal_maps():
        threads(1)
        tr = read_sasp_trace(sim_P, size, num_points=k)
        expected_centres = literal_centres(tr["selected_indices"], tr["grid"].shape, size)
        expected_points = literal_refine(tr["origin_sm"], tr["discrete_points"])
        assert torch.equal(tr["discrete_points"], expected_centres), size
        assert torch.equal(tr["points"], expected_points), size
        threads(max(2, os.cpu_count() or 2))
        assert torch.equal(read_sasp_trace(sim_P, size, num_points=k)["points"], expected_points), size


def test_pads_when_fewer_cells_than_points():
    sim = torch.randn(2, 16, generator=torch.Generator().manual_seed(1))  # S = 4, D = 2: 4 cells
    sizes = [(20, 20), (40, 30)]
    points, labels = read_similarity_to_points(sim, sizes, num_points=10)
    assert points.shape == (2, 10, 2) and labels.shape == (2, 10)
    for b, size in enumerate(sizes):
        tr = read_sasp_trace(sim[b], size, num_points=10)
        n = tr["selected_indices"].numel()
        assert n == 4
        assert torch.equal(points[b, :n], tr["points"]) and torch.equal(labels[b, :n], tr["labels"])
        assert (labels[b, n:] == -1).all() and (points[b, n:] == 0).all()


def test_constant_map_is_all_padding():
    """READ's min-max of a constant map is 0 / 0 = NaN: nothing is selectable, every slot is padding."""
    points, labels = read_similarity_to_points(torch.ones(1, 16), [(30, 30)], num_points=5)
    assert (labels == -1).all() and (points == 0).all()


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="square"):
        read_similarity_to_points(torch.randn(1, 15), [(10, 10)])
    with pytest.raises(ValueError, match="image_sizes"):
        read_similarity_to_points(torch.randn(2, 16), [(10, 10)])
    with pytest.raises(ValueError, match="one \\(P,\\) map"):
        read_sasp_trace(torch.randn(1, 16), (10, 10))
