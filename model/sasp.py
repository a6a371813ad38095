"""SasP (Similarity as Points): turn per-patch [SEG]/image similarities into SAM point prompts, batched.

Implements steps 2-6 of the SasP section of the READ spec (step 1, the dot product, and step 7, SAM's 1024 frame,
are done by the model; `to_sam_frame` is the step-7 helper). Everything is batched over the B maps: no Python loop
over maps, cells or points.

The continuous step (6) is the expensive one in the direct form: for every point it takes a softmax over the whole
H x W map M and a Gaussian-weighted mean over all pixels. Two facts make it cheap here:
  * the softmax normaliser cancels in the normalised weighted mean, so the weights are exp(-d^2) * exp(M);
  * exp(-d^2) is negligible a few pixels away, so only a (2r+1)^2 window around each point is needed, and M is
    evaluated only at those pixels by composing the exact bilinear resize chain (separable, so as two small
    per-point weight matrices applied to the side x side map).
The cost is therefore independent of the image size.

Window error bound (r = WINDOW_RADIUS = 4): the centre pixel weighs >= 1 (d = 0, M >= 0) and every weight is
<= e * exp(-dx^2 - dy^2) (M <= 1), so dropping the pixels with max(|dx|, |dy|) > 4 moves the mean by at most
4 * e * exp(-25) * 5 * sum_dy exp(-dy^2) ~= 1.3e-9 px, far below float32 resolution.

Choices where the spec is open (model/sasp_direct.py makes the same ones; keep both in sync):
  * Canvas size (step 3): the shorter side is exactly the map side D = side // down_sample; the longer side L is
    floor(L_img * D / S_img) in exact integer arithmetic (the reference's float product can fall just below an
    integer and then crop the map); the map is padded by (L - D) // 2 cells on both ends, so an odd remainder is
    dropped. The same rule, with D replaced by `clip_size`, builds the canvas of the full-resolution map M.
  * Fill values: -1 for the cell canvas (never selected); 0 for the canvas of M (as the reference does).
  * Ties: cells with equal values keep row-major order (stable sorts); neutral cells are in row-major order.
  * Cell centre (step 5): canvas cell (row, col) of an (h, w) canvas maps to the integer pixel
    x = min(floor((2*col + 1) * W / (2*w)), W - 1), y likewise, computed in exact integer arithmetic (the
    reference truncates a float32 product, which can differ by one pixel when the exact value is an integer).
  * Fewer valid cells than `num_points` (tiny presets): the remaining slots are padding, label -1, point (0, 0),
    and carry no gradient.
  * A constant map (max == min) normalises to all zeros (denominator clamped to 1e-12), so all cells are negatives.
  * Everything is computed in float32 whatever the input dtype (bfloat16 is accepted).

References: READ (arXiv 2412.17741) and its public code; CLIP Surgery's similarity-map-to-points idea;
segment_anything.utils.transforms.ResizeLongestSide for `to_sam_frame`.

Legend: B maps, P = S*S patches, S map side, D = S // down_sample cell side, K = num_points, L = 2r+1 window side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

WINDOW_RADIUS = 4
"""Half side of the window around each point in which the Gaussian weights are evaluated (see module docstring)."""

_NORM_EPS = 1e-12


def similarity_to_points(
    similarity: torch.Tensor,
    image_sizes: Sequence[tuple[int, int]],
    *,
    num_points: int = 30,
    t_pos: float = 0.8,
    t_neg: float = 0.2,
    down_sample: int = 2,
    clip_size: int = 336,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SasP steps 2-6 for a batch of similarity maps.

    Args:
        similarity: (B, P) float (float32 or bfloat16) per-patch [SEG]/image similarities, P = S*S.
        image_sizes: B original image sizes (H, W).
        num_points: K, points returned per map.
        t_pos: cells >= t_pos are positives (label 1), highest first.
        t_neg: cells in [0, t_neg] are negatives (label 0), lowest first; cells in between are neutral (label -1).
        down_sample: the S x S map is bilinearly resized to D x D, D = S // down_sample.
        clip_size: side of the CLIP input the full-resolution map M is resized to before the aspect canvas.

    Returns:
        points: (B, K, 2) float32 (x, y) in original-image pixels, differentiable w.r.t. `similarity`.
        labels: (B, K) long in {1, 0, -1}.
    """
    check_sasp_args(similarity, image_sizes, num_points, t_pos, t_neg, down_sample, clip_size)
    device = similarity.device
    B, P = similarity.shape
    S = math.isqrt(P)
    D = S // down_sample
    K = num_points
    if B == 0:
        return torch.zeros(0, K, 2, device=device), torch.zeros(0, K, dtype=torch.long, device=device)

    sim_BP = similarity.float()
    sizes_B2 = torch.tensor([[int(h), int(w)] for h, w in image_sizes], dtype=torch.long, device=device)
    H_B, W_B = sizes_B2[:, 0], sizes_B2[:, 1]

    # Steps 2-4 on the D x D cell map. The canvas padding is never selected, and the row-major order of the valid
    # cells is the same in the map and in the canvas, so the selection runs on the map and the canvas only shifts
    # coordinates.
    cells_B1DD = F.interpolate(sim_BP.reshape(B, 1, S, S), size=(D, D), mode="bilinear", align_corners=False)
    cells_BC = cells_B1DD.reshape(B, D * D)
    cells_BC = _minmax(cells_BC)
    order_BK, labels_BK = _select_cells(cells_BC, num_points=K, t_pos=t_pos, t_neg=t_neg)
    is_point_BK = order_BK >= 0

    # Step 5: cell centres in original-image pixels (integer arithmetic, see module docstring).
    canvas_h_B, pad_h_B = _aspect_canvas(H_B, W_B, D)
    canvas_w_B, pad_w_B = _aspect_canvas(W_B, H_B, D)
    idx_BK = order_BK.clamp_min(0)
    row_BK = idx_BK // D + pad_h_B[:, None]
    col_BK = idx_BK % D + pad_w_B[:, None]
    x0_BK = torch.minimum((2 * col_BK + 1) * W_B[:, None] // (2 * canvas_w_B[:, None]), W_B[:, None] - 1)
    y0_BK = torch.minimum((2 * row_BK + 1) * H_B[:, None] // (2 * canvas_h_B[:, None]), H_B[:, None] - 1)

    # Step 6 on a window around each point.
    m0_BSS = _minmax(sim_BP).reshape(B, S, S)
    xy_BK2 = _refine(m0_BSS, x0_BK, y0_BK, H_B, W_B, clip_size=clip_size)
    points_BK2 = torch.where(is_point_BK[..., None], xy_BK2, torch.zeros_like(xy_BK2))
    return points_BK2, labels_BK


def to_sam_frame(points: torch.Tensor, image_sizes: Sequence[tuple[int, int]], sam_size: int) -> torch.Tensor:
    """Step 7: original-image (x, y) points to SAM's resized frame, as ResizeLongestSide.apply_coords does.

    Args:
        points: (B, K, 2) float (x, y) in original-image pixels.
        image_sizes: B original sizes (H, W).
        sam_size: SAM's longest side (1024 for the real SAM).

    Returns:
        (B, K, 2) float points in the frame of the image resized so that its longest side is `sam_size`.
    """
    if points.dim() != 3 or points.shape[-1] != 2 or points.shape[0] != len(image_sizes):
        raise ValueError(
            f"to_sam_frame: points must be (B, K, 2) with B == len(image_sizes) = {len(image_sizes)}, "
            f"got {tuple(points.shape)}"
        )
    factors = []
    for h, w in image_sizes:
        scale = sam_size * 1.0 / max(h, w)
        new_h, new_w = int(h * scale + 0.5), int(w * scale + 0.5)
        factors.append((new_w / w, new_h / h))
    factor_B12 = torch.tensor(factors, dtype=points.dtype, device=points.device).view(-1, 1, 2)
    return points * factor_B12


def check_sasp_args(similarity, image_sizes, num_points, t_pos, t_neg, down_sample, clip_size, *,
                    caller: str = "similarity_to_points") -> None:
    """Raise ValueError (prefixed with `caller`) for arguments no SasP implementation accepts (shared by
    `model.sasp_read`)."""
    if similarity.dim() != 2:
        raise ValueError(f"{caller}: similarity must be (B, P), got shape {tuple(similarity.shape)}")
    B, P = similarity.shape
    S = math.isqrt(P)
    if S * S != P or P == 0:
        raise ValueError(f"{caller}: P = {P} patches is not a square number; pass one map of S*S patches")
    if len(image_sizes) != B:
        raise ValueError(f"{caller}: {len(image_sizes)} image_sizes for {B} similarity maps; pass one each")
    for h, w in image_sizes:
        if int(h) < 1 or int(w) < 1:
            raise ValueError(f"{caller}: image size ({h}, {w}) must be positive")
    if num_points < 1:
        raise ValueError(f"num_points must be >= 1, got {num_points}")
    if down_sample < 1 or S // down_sample < 1:
        raise ValueError(f"down_sample must be in [1, {S}] for a {S}x{S} similarity map, got {down_sample}")
    if not 0.0 <= t_neg < t_pos <= 1.0:
        raise ValueError(f"thresholds must satisfy 0 <= t_neg < t_pos <= 1, got t_neg={t_neg}, t_pos={t_pos}")
    if clip_size < 1:
        raise ValueError(f"clip_size must be >= 1, got {clip_size}")


def _minmax(x_BN: torch.Tensor) -> torch.Tensor:
    """Per-row min-max normalisation to [0, 1]; a constant row becomes 0."""
    lo = x_BN.amin(dim=1, keepdim=True)
    hi = x_BN.amax(dim=1, keepdim=True)
    return (x_BN - lo) / (hi - lo).clamp_min(_NORM_EPS)


def _aspect_canvas(side_B: torch.Tensor, other_B: torch.Tensor, map_side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Canvas length and one-end padding along one axis for a square map of `map_side` in the image's aspect.

    The shorter image side gets exactly `map_side`; a longer one floor(side * map_side / shorter), padded evenly
    by (length - map_side) // 2 at each end (the canvas is map_side + 2 * pad long).
    """
    shorter_B = torch.minimum(side_B, other_B)
    pad_B = (side_B * map_side // shorter_B - map_side) // 2
    return map_side + 2 * pad_B, pad_B


def _select_cells(
    cells_BC: torch.Tensor, *, num_points: int, t_pos: float, t_neg: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step 4: order cells as positives (highest first), negatives (lowest first), neutral (row-major).

    Args:
        cells_BC: (B, C) min-max normalised cell values, C = D*D, row-major.

    Returns:
        order: (B, K) long cell index, -1 for padding slots when C < K.
        labels: (B, K) long, 1 positive, 0 negative, -1 neutral or padding.
    """
    B, C = cells_BC.shape
    pos_BC = cells_BC >= t_pos
    neg_BC = (cells_BC >= 0) & (cells_BC <= t_neg)
    group_BC = torch.where(pos_BC, 0, torch.where(neg_BC, 1, 2))
    key_BC = torch.where(pos_BC, -cells_BC, torch.where(neg_BC, cells_BC, torch.zeros_like(cells_BC)))
    # Lexicographic (group, key, index): stable sort by key, then stable sort by group.
    by_key_BC = torch.sort(key_BC.detach(), dim=1, stable=True).indices
    by_group_BC = torch.sort(group_BC.gather(1, by_key_BC), dim=1, stable=True).indices
    order_BC = by_key_BC.gather(1, by_group_BC)
    label_of_group = torch.tensor([1, 0, -1], dtype=torch.long, device=cells_BC.device)
    labels_BC = label_of_group[group_BC.gather(1, order_BC)]
    kept = min(num_points, C)
    order_BK = torch.full((B, num_points), -1, dtype=torch.long, device=cells_BC.device)
    labels_BK = torch.full((B, num_points), -1, dtype=torch.long, device=cells_BC.device)
    order_BK[:, :kept] = order_BC[:, :kept]
    labels_BK[:, :kept] = labels_BC[:, :kept]
    return order_BK, labels_BK


def _linear_taps(dst: torch.Tensor, in_size: torch.Tensor, out_size: torch.Tensor):
    """1-D taps of F.interpolate(mode="bilinear", align_corners=False) from `in_size` to `out_size` samples.

    Args:
        dst: (...) float32 integer-valued destination indices in [0, out_size).
        in_size, out_size: long tensors broadcastable to dst.

    Returns:
        i0, i1: (...) long source indices; l0, l1: (...) float32 weights (l0 + l1 == 1).
    """
    scale = in_size.float() / out_size.float()
    src = (scale * (dst + 0.5) - 0.5).clamp_min(0.0)
    i0 = torch.minimum(src.floor().long(), in_size - 1)
    l1 = (src - i0.float()).clamp(0.0, 1.0)
    i1 = torch.where(i0 < in_size - 1, i0 + 1, i0)
    return i0, i1, 1.0 - l1, l1


def _resize_chain_weights(
    dst_BKL: torch.Tensor, img_B: torch.Tensor, canvas_B: torch.Tensor, pad_B: torch.Tensor, S: int, clip_size: int
) -> torch.Tensor:
    """Along one axis: weights of the S map samples in M at image pixels `dst` (the resize chain is linear).

    M along this axis = resize(canvas -> image) o zero-pad(pad at each end) o resize(S -> clip_size).

    Args:
        dst_BKL: (B, K, L) long image pixel indices, in range.
        img_B, canvas_B, pad_B: (B,) long image length, canvas length and one-end padding.

    Returns:
        (B, K, L, S) float32 weights w such that M at dst = sum_s w[..., s] * map[s].
    """
    B = dst_BKL.shape[0]
    a0, a1, la0, la1 = _linear_taps(dst_BKL.float(), canvas_B.view(B, 1, 1), img_B.view(B, 1, 1))
    s_S = torch.arange(S, device=dst_BKL.device)
    clip = torch.tensor(clip_size, device=dst_BKL.device)
    weights_BKLS = torch.zeros(*dst_BKL.shape, S, dtype=torch.float32, device=dst_BKL.device)
    # One-hot sums instead of scatter_add_, which is non-deterministic on CUDA; the tensors are tiny.
    for a, la in ((a0, la0), (a1, la1)):
        q = a - pad_B.view(B, 1, 1)  # index in the clip_size x clip_size map
        inside = ((q >= 0) & (q < clip_size)).float()
        b0, b1, lb0, lb1 = _linear_taps(q.clamp(0, clip_size - 1).float(), torch.tensor(S, device=q.device), clip)
        weights_BKLS = weights_BKLS + (b0[..., None] == s_S) * (la * lb0 * inside)[..., None]
        weights_BKLS = weights_BKLS + (b1[..., None] == s_S) * (la * lb1 * inside)[..., None]
    return weights_BKLS


def _refine(
    m0_BSS: torch.Tensor,
    x0_BK: torch.Tensor,
    y0_BK: torch.Tensor,
    H_B: torch.Tensor,
    W_B: torch.Tensor,
    *,
    clip_size: int,
) -> torch.Tensor:
    """Step 6: softmax(M)- and Gaussian-weighted mean of pixel coordinates around each integer point.

    Args:
        m0_BSS: (B, S, S) min-max normalised similarity map (differentiable).
        x0_BK, y0_BK: (B, K) long integer points inside the image.
        H_B, W_B: (B,) long image sizes.

    Returns:
        (B, K, 2) float32 (x, y).
    """
    B, S, _ = m0_BSS.shape
    r = WINDOW_RADIUS
    offsets_L = torch.arange(-r, r + 1, device=m0_BSS.device)
    ys_BKL = y0_BK[..., None] + offsets_L
    xs_BKL = x0_BK[..., None] + offsets_L
    valid_y_BKL = (ys_BKL >= 0) & (ys_BKL < H_B.view(B, 1, 1))
    valid_x_BKL = (xs_BKL >= 0) & (xs_BKL < W_B.view(B, 1, 1))
    ys_BKL = torch.minimum(ys_BKL.clamp_min(0), H_B.view(B, 1, 1) - 1)
    xs_BKL = torch.minimum(xs_BKL.clamp_min(0), W_B.view(B, 1, 1) - 1)

    canvas_h_B, pad_h_B = _aspect_canvas(H_B, W_B, clip_size)
    canvas_w_B, pad_w_B = _aspect_canvas(W_B, H_B, clip_size)
    wy_BKLS = _resize_chain_weights(ys_BKL, H_B, canvas_h_B, pad_h_B, S, clip_size)
    wx_BKLS = _resize_chain_weights(xs_BKL, W_B, canvas_w_B, pad_w_B, S, clip_size)
    # M on each window: (B, K, L, S) @ (B, 1, S, S) @ (B, K, S, L) -> (B, K, L, L), rows y, columns x.
    m_BKLL = wy_BKLS @ m0_BSS[:, None] @ wx_BKLS.transpose(-1, -2)

    d2_L = offsets_L.float() ** 2
    log_w_BKLL = m_BKLL - d2_L[:, None] - d2_L[None, :]
    valid_BKLL = valid_y_BKL[..., :, None] & valid_x_BKL[..., None, :]
    w_BKLL = torch.where(valid_BKLL, torch.exp(log_w_BKLL), torch.zeros_like(log_w_BKLL))
    total_BK = w_BKLL.sum(dim=(-1, -2))  # >= 1: the centre pixel has d = 0 and M >= 0
    off_L = offsets_L.float()
    dx_BK = (w_BKLL * off_L[None, None, None, :]).sum(dim=(-1, -2)) / total_BK
    dy_BK = (w_BKLL * off_L[None, None, :, None]).sum(dim=(-1, -2)) / total_BK
    return torch.stack([x0_BK.float() + dx_BK, y0_BK.float() + dy_BK], dim=-1)
