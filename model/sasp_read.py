"""SasP (Similarity as Points) with READ's own arithmetic ("READ numerics"), for released READ checkpoints.

`model/sasp.py` implements SasP in exact arithmetic (integer canvas sizes, stable sorts, a windowed refinement).
A released READ checkpoint was trained and evaluated with the points of READ's `similarity_map_to_points`, whose
float arithmetic differs from the exact one in a few visible places (see "READ's arithmetic" below). This module is
an independent implementation of that arithmetic: run on CPU, it reproduces READ's values bit for bit (the read-tiny
oracle, tests/conformance/test_sasp_read.py), including the discrete choices (selected cells, labels, integer cell
centres) where the exact version can differ.

Steps for one map (B maps are processed one by one: the image sizes, hence every shape below, differ per map):
  1. Full-resolution map M (`origin_sm`, H x W): the S x S map min-max normalised in the INPUT dtype (bf16 in bf16
     runs), cast to float32, bilinearly resized to clip_size x clip_size, put on the aspect canvas of the image (see
     `read_canvas_pad`; a negative pad crops), bilinearly resized to (H, W).
  2. Cell grid (h x w): the map cast to float32, bilinearly resized to D x D, min-max normalised in float32, put on
     the aspect canvas of side D with fill value -1 (never selected).
  3. Selection: positives (grid >= t_pos) by descending value, negatives (0 <= grid <= t_neg) by ascending value,
     both with torch's default (unstable) argsort, then neutral cells in row-major order; the first K are kept and
     labelled 1 / 0 / -1 by group.
  4. Discrete point of flat cell index i: x = min((i % w + 0.5) * (W / w), W - 1) in float32, truncated to an int;
     y likewise with i // w, h and H.
  5. Continuous point: the mean pixel coordinate under weights exp(-d^2) * softmax(M) over all H x W pixels, where d
     is the distance to the discrete point.

READ's arithmetic (what differs from model/sasp.py):
  * Canvas: new = int(side * (target / min(H, W))) in Python floats, so a product that should be an integer can fall
    just below it; e.g. a 333 px side gives 333 * (336 / 333) = 335.99999999999994 -> 335 -> pad (335 - 336) // 2 =
    -1, and F.pad crops one pixel column of the 336-map on each side. An odd remainder loses one canvas cell.
  * M is min-max normalised in the run dtype: in bf16 both (x - min) and the quotient are rounded to bf16.
  * Cell centres are float32 products truncated to int (can be one pixel below the exact floor).
  * argsort is unstable: equal positive values need not keep row-major order.
  * The refinement runs over the whole image (no window) in float32; READ loops over the points, this module
    evaluates several points at once with the same elementwise float32 operations and the same per-point sums.
  * A constant map gives 0 / 0 = NaN in READ's min-max normalisation; no cell is then selectable (READ itself would
    fail on the empty point list). Here every slot is padding. The same happens for a one-cell grid (D = 1).
  * Fewer selectable cells than K (tiny maps): the remaining slots are padding, point (0, 0), label -1, as in
    model/sasp.py.

Determinism of the sums: torch's CPU sum of a single 1-D tensor is split across threads (two-pass reduction), so
READ's per-point loop gives thread-count-dependent last bits; the read-tiny goldens were made with one thread. A sum
over the rows of a (k >= 2, N) tensor is parallelised over rows only, each row being summed serially exactly as a
1-D sum on one thread; `_refine` therefore always reduces at least two rows at a time and reproduces READ's
single-thread result whatever the thread count.

Inference only: the public functions run under torch.no_grad() (READ's points carry no gradient either).

References: READ (arXiv 2412.17741) and its public code (github.com/rui-qian/READ, model/READ.py,
`similarity_map_to_points`), reimplemented here, not copied.

Legend: P = S*S patches, S map side, D = S // down_sample grid side, (h, w) padded grid, (H, W) image size,
K = num_points, n <= K selected cells, N = H*W pixels, k points per refinement chunk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from model.sasp import check_sasp_args

REFINE_CHUNK_ELEMENTS = 1 << 22
"""Upper bound on k * N, the size of each (k, N) float32 temporary of the refinement (k >= 2 regardless)."""

_LABEL_POS, _LABEL_NEG, _LABEL_NEUTRAL = 1, 0, -1


@torch.no_grad()
def read_similarity_to_points(
    similarity: torch.Tensor,
    image_sizes: Sequence[tuple[int, int]],
    *,
    num_points: int = 30,
    t_pos: float = 0.8,
    t_neg: float = 0.2,
    down_sample: int = 2,
    clip_size: int = 336,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SasP point prompts of a batch of similarity maps, with READ's arithmetic (inference only, no gradient).

    Args:
        similarity: (B, P) per-patch [SEG]/image similarities in the run dtype (float32 or bfloat16; the dtype
            matters: READ min-max normalises the full-resolution map in it), P = S*S.
        image_sizes: B original image sizes (H, W) (READ's `sam_mask_shape[1]`).
        num_points: K, points per map (READ-7B: 30).
        t_pos: grid cells >= t_pos are positives (label 1).
        t_neg: grid cells in [0, t_neg] are negatives (label 0); cells strictly between are neutral (label -1).
        down_sample: the S x S map is resized to D x D cells, D = S // down_sample.
        clip_size: side of the square map M is resized to before the aspect canvas (READ: 336).

    Returns:
        points: (B, K, 2) float32 (x, y) in original-image pixels; padding slots are (0, 0).
        labels: (B, K) long in {1, 0, -1}; padding slots are -1.
    """
    _check_args(similarity, image_sizes, num_points, t_pos, t_neg, down_sample, clip_size)
    B = similarity.shape[0]
    K = num_points
    points_BK2 = torch.zeros(B, K, 2, dtype=torch.float32, device=similarity.device)
    labels_BK = torch.full((B, K), _LABEL_NEUTRAL, dtype=torch.long, device=similarity.device)
    for b in range(B):
        trace = read_sasp_trace(
            similarity[b],
            image_sizes[b],
            num_points=K,
            t_pos=t_pos,
            t_neg=t_neg,
            down_sample=down_sample,
            clip_size=clip_size,
        )
        n = trace["selected_indices"].numel()
        points_BK2[b, :n] = trace["points"]
        labels_BK[b, :n] = trace["labels"]
    return points_BK2, labels_BK


@torch.no_grad()
def read_sasp_trace(
    similarity: torch.Tensor,
    image_size: tuple[int, int],
    *,
    num_points: int = 30,
    t_pos: float = 0.8,
    t_neg: float = 0.2,
    down_sample: int = 2,
    clip_size: int = 336,
) -> dict[str, torch.Tensor]:
    """Every intermediate value of READ's SasP for one map (for tests and traces); arguments as in
    `read_similarity_to_points`, with `similarity` one (P,) map and `image_size` its (H, W).

    Returns a dict of tensors (n = number of selected cells, n <= K; n < K only when fewer cells are selectable):
        origin_sm: (H, W) float32 full-resolution map M (step 1).
        grid: (h, w) float32 padded, normalised cell grid (step 2); padding cells are -1.
        pos_indices, neg_indices, neutral_indices: long flat grid indices of each group in row-major order.
        selected_indices: (n,) long, positives by descending value, negatives by ascending value, then neutrals.
        labels: (n,) long in {1, 0, -1}.
        discrete_points: (n, 2) long integer (x, y) cell centres in image pixels (step 4).
        points: (n, 2) float32 refined (x, y) (step 5).
    """
    if similarity.dim() != 1:
        raise ValueError(f"read_sasp_trace: similarity must be one (P,) map, got shape {tuple(similarity.shape)}")
    _check_args(similarity[None], [image_size], num_points, t_pos, t_neg, down_sample, clip_size)
    H, W = int(image_size[0]), int(image_size[1])
    S = math.isqrt(similarity.numel())

    origin_sm_HW = _full_resolution_map(similarity, (H, W), clip_size)
    grid_hw = _cell_grid(similarity, (H, W), S // down_sample)
    pos_n, neg_n, neutral_n, selected_n, labels_n = _select(grid_hw.reshape(-1), num_points, t_pos, t_neg)
    discrete_n2 = _cell_centres(selected_n, grid_hw.shape, (H, W))
    points_n2 = _refine(origin_sm_HW, discrete_n2)
    return {
        "origin_sm": origin_sm_HW,
        "grid": grid_hw,
        "pos_indices": pos_n,
        "neg_indices": neg_n,
        "neutral_indices": neutral_n,
        "selected_indices": selected_n,
        "labels": labels_n,
        "discrete_points": discrete_n2,
        "points": points_n2,
    }


def read_canvas_pad(image_size: tuple[int, int], target: int) -> tuple[int, int]:
    """READ's aspect canvas for a square map of side `target`: the padding (pad_h, pad_w) added on BOTH ends.

    new = int(side * (target / min(H, W))) in Python floats (truncation), pad = (new - target) // 2; a pad of -1
    (a product just below `target`) makes F.pad crop one row/column on each end.
    """
    h, w = image_size
    scale = target / min(h, w)
    new_h, new_w = int(h * scale), int(w * scale)
    return (new_h - target) // 2, (new_w - target) // 2


def _check_args(similarity, image_sizes, num_points, t_pos, t_neg, down_sample, clip_size) -> None:
    if similarity.dim() == 2 and not similarity.is_floating_point():
        raise ValueError(f"read_similarity_to_points: similarity must be floating point, got {similarity.dtype}")
    check_sasp_args(similarity, image_sizes, num_points, t_pos, t_neg, down_sample, clip_size,
                    caller="read_similarity_to_points")


def _pad_to_canvas(map_11ss: torch.Tensor, image_size: tuple[int, int], target: int, fill: float) -> torch.Tensor:
    """(..., s, s) map on READ's aspect canvas (constant `fill`); a negative pad crops. Raises if nothing is left."""
    pad_h, pad_w = read_canvas_pad(image_size, target)
    side = map_11ss.shape[-1]
    if side + 2 * pad_h < 1 or side + 2 * pad_w < 1:
        raise ValueError(
            f"READ's canvas arithmetic crops a {side}x{side} map to nothing for image size {tuple(image_size)} "
            f"(pads {pad_h}, {pad_w}); use a larger map"
        )
    return F.pad(map_11ss, (pad_w, pad_w, pad_h, pad_h), mode="constant", value=fill)


def _full_resolution_map(similarity_P: torch.Tensor, image_size: tuple[int, int], clip_size: int) -> torch.Tensor:
    """Step 1: (P,) map in the run dtype -> (H, W) float32 map M."""
    S = math.isqrt(similarity_P.numel())
    # Min-max in the run dtype (bf16 rounding after the subtraction and the division). The shapes and strides follow
    # READ's tensors ((1, P, 1) with (1, 1, 1) bounds, then a permuted view) so that torch picks the same kernels; on
    # CPU a contiguous layout gives the same bits, but nothing guarantees that for every backend.
    sim_1P1 = similarity_P.reshape(1, -1, 1)
    lo_111 = sim_1P1.amin(dim=1, keepdim=True)
    hi_111 = sim_1P1.amax(dim=1, keepdim=True)
    norm_1P1 = (sim_1P1 - lo_111) / (hi_111 - lo_111)
    # (1, S, S, 1) viewed as (1, 1, S, S), as READ's tensor is.
    norm_11SS = norm_1P1.reshape(1, S, S, 1).permute(0, 3, 1, 2).to(torch.float32)
    square_11CC = F.interpolate(norm_11SS, size=(clip_size, clip_size), mode="bilinear", align_corners=False)
    canvas_11hw = _pad_to_canvas(square_11CC, image_size, clip_size, fill=0.0)
    full_11HW = F.interpolate(canvas_11hw, size=tuple(image_size), mode="bilinear", align_corners=False)
    return full_11HW[0, 0]


def _cell_grid(similarity_P: torch.Tensor, image_size: tuple[int, int], D: int) -> torch.Tensor:
    """Step 2: (P,) map -> (h, w) float32 grid: D x D bilinear, min-max in float32, canvas filled with -1."""
    S = math.isqrt(similarity_P.numel())
    sim_11SS = similarity_P.reshape(1, 1, S, S).to(torch.float32)
    cells_DD = F.interpolate(sim_11SS, size=(D, D), mode="bilinear", align_corners=False)[0, 0]
    cells_DD = (cells_DD - cells_DD.min()) / (cells_DD.max() - cells_DD.min())
    return _pad_to_canvas(cells_DD, image_size, D, fill=-1.0)


def _select(
    grid_C: torch.Tensor, num_points: int, t_pos: float, t_neg: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Step 3 on the flat (C,) grid, C = h*w.

    Thresholds are compared by torch (the Python floats are rounded to float32 there, as in READ). The sorts are
    torch.argsort's default (unstable) sorts of the group's values gathered in row-major order, as READ calls them.

    Returns:
        pos, neg, neutral: long flat indices of each group in row-major order.
        selected: (n,) long, n = min(K, number of selectable cells).
        labels: (n,) long.
    """
    pos = torch.nonzero(grid_C >= t_pos).reshape(-1)
    neg = torch.nonzero((grid_C >= 0) & (grid_C <= t_neg)).reshape(-1)
    neutral = torch.nonzero((grid_C > t_neg) & (grid_C < t_pos)).reshape(-1)
    pos_sorted = pos[torch.argsort(grid_C[pos], descending=True)]
    neg_sorted = neg[torch.argsort(grid_C[neg])]
    selected = torch.cat([pos_sorted, neg_sorted, neutral])[:num_points]
    # The groups are disjoint, so a cell's label is its group's (READ tests membership in pos / neg).
    group_labels = torch.cat(
        [
            torch.full_like(pos, _LABEL_POS),
            torch.full_like(neg, _LABEL_NEG),
            torch.full_like(neutral, _LABEL_NEUTRAL),
        ]
    )
    return pos, neg, neutral, selected, group_labels[:num_points]


def _cell_centres(selected_n: torch.Tensor, grid_shape: tuple[int, int], image_size: tuple[int, int]) -> torch.Tensor:
    """Step 4: flat grid indices -> (n, 2) long (x, y) image pixels, in READ's float32 arithmetic.

    (index % w + 0.5) is a float32 tensor (int64 tensor + Python float), the product with the Python float W / w is
    float32, the bound W - 1 is a float32 tensor, and the result is truncated toward zero.
    """
    h, w = grid_shape
    H, W = image_size
    scale_h, scale_w = float(H) / h, float(W) / w
    bound_w = torch.tensor(W - 1, dtype=torch.float32, device=selected_n.device)
    bound_h = torch.tensor(H - 1, dtype=torch.float32, device=selected_n.device)
    x_n = torch.minimum((selected_n % w + 0.5) * scale_w, bound_w)
    y_n = torch.minimum((selected_n // w + 0.5) * scale_h, bound_h)
    return torch.stack([x_n, y_n], dim=-1).long()


def _refine(origin_sm_HW: torch.Tensor, discrete_n2: torch.Tensor) -> torch.Tensor:
    """Step 5: (n, 2) long points -> (n, 2) float32 means of the pixel coordinates under exp(-d^2) * softmax(M).

    Per point, over all N pixels and in float32: d2 = (gx - x)^2 + (gy - y)^2; w = exp(-d2) * softmax(M);
    w = w / sum(w); (x', y') = (sum(gx * w), sum(gy * w)). Points are processed k >= 2 at a time as rows of (k, N)
    tensors: every elementwise operation is the same as READ's per-point one, and each row sum is a serial
    single-row reduction (see the module docstring), so the result is READ's single-thread result.
    """
    n = discrete_n2.shape[0]
    H, W = origin_sm_HW.shape
    device = origin_sm_HW.device
    if n == 0:
        return torch.zeros(0, 2, dtype=torch.float32, device=device)
    probs_N = F.softmax(origin_sm_HW.reshape(-1), dim=0)
    gx_HW, gy_HW = torch.meshgrid(torch.arange(W, device=device), torch.arange(H, device=device), indexing="xy")
    gx_N = gx_HW.float().reshape(-1)
    gy_N = gy_HW.float().reshape(-1)

    # A lone point is duplicated so that its sums are row reductions too.
    pts_m2 = discrete_n2 if n >= 2 else discrete_n2.expand(2, 2)
    m = pts_m2.shape[0]
    k = max(2, REFINE_CHUNK_ELEMENTS // max(1, gx_N.numel()))
    out_m2 = torch.empty(m, 2, dtype=torch.float32, device=device)
    for start in range(0, m, k):
        stop = min(start + k, m)
        lo = min(start, stop - 2)  # a last chunk of one point is computed with its predecessor
        x_k1 = pts_m2[lo:stop, 0:1]
        y_k1 = pts_m2[lo:stop, 1:2]
        dist_kN = (gx_N - x_k1) ** 2 + (gy_N - y_k1) ** 2
        weights_kN = torch.exp(-dist_kN) * probs_N
        weights_kN = weights_kN / weights_kN.sum(dim=1, keepdim=True)
        cx_k = (gx_N * weights_kN).sum(dim=1)
        cy_k = (gy_N * weights_kN).sum(dim=1)
        out_m2[lo:stop] = torch.stack([cx_k, cy_k], dim=-1)
    return out_m2[:n]
