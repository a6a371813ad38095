"""The warm start's own loss, not READ's: `pointing_ce` trains the tiny LLaVA's [SEG] similarity map onto the queried
object's patches (demo/language).

Legend: N [SEG] maps, P image tokens.
"""

from __future__ import annotations

import torch


def pointing_ce(similarity_NP: torch.Tensor, target_NP: torch.Tensor, *, scale: float) -> torch.Tensor:
    """Listwise CE of a [SEG] similarity map against its object's patches: -log sum_{p in target} softmax(sim/scale)_p.

    similarity_NP (N, P) float; target_NP (N, P) bool with at least one True per row. Mean over N, float32, 0-dim.
    It is low when the object's patches take the map's mass, whatever the map's values elsewhere.
    """
    if not bool(target_NP.any(1).all()):
        raise ValueError("pointing_ce: every map needs at least one target patch")
    logp_NP = torch.log_softmax(similarity_NP.float() / scale, dim=1)
    return -torch.logsumexp(logp_NP.masked_fill(~target_NP, float("-inf")), dim=1).mean()
