"""The shared prefix of batched greedy decoding (`READ.generate_batch`): the prompts of one image start with the same
system text and the same image tokens, so that prefix goes through the LLM once per image, its KV cache is copied to
the image's rows, and each row prefills only its own suffix (the question).

Pure tensor bookkeeping: which rows share which prefix, the left-padded prefix and suffix batches, and the prompt
states put back in the rows' own left-padded layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SharedPrefix:
    """G prefixes (one per image with its rows) and C suffixes, each batch left-padded.

    Attributes:
        group_image: (G,) the image of each prefix.
        row_group: (C,) the prefix of each row.
        prefix_ids, prefix_mask: (G, L) left-padded prefixes (mask 0 on the padding).
        prefix_len: (G,) real tokens of each prefix.
        suffix_ids, suffix_mask: (C, S) left-padded suffixes; every row has at least one suffix token.
    """

    group_image: torch.Tensor
    row_group: torch.Tensor
    prefix_ids: torch.Tensor
    prefix_mask: torch.Tensor
    prefix_len: torch.Tensor
    suffix_ids: torch.Tensor
    suffix_mask: torch.Tensor

    def prompt_states(self, prefix_GLD: torch.Tensor, suffix_CSD: torch.Tensor,
                      attention_mask_CT: torch.Tensor) -> torch.Tensor:
        """The states of the prefix and suffix passes put back in the prompts' layout: (C, T, D), zeros on the
        padding, as one pass over the left-padded prompts (`attention_mask_CT`) returns them."""
        C, T = attention_mask_CT.shape
        out_CTD = prefix_GLD.new_zeros(C, T, prefix_GLD.shape[-1])
        lengths = self.prefix_len.tolist()
        for c, g in enumerate(self.row_group.tolist()):
            real = attention_mask_CT[c].bool().nonzero().squeeze(1)
            L = lengths[g]
            out_CTD[c, real[:L]] = prefix_GLD[g, prefix_GLD.shape[1] - L:]
            out_CTD[c, real[L:]] = suffix_CSD[c, suffix_CSD.shape[1] - (len(real) - L):]
        return out_CTD


def plan_shared_prefix(input_ids_CT: torch.Tensor, attention_mask_CT: torch.Tensor, image_index_C: torch.Tensor,
                       *, image_token_id: int, pad_id: int) -> SharedPrefix | None:
    """The shared prefixes of left-padded prompts, or None when no image has two rows (nothing to share) or when an
    image's rows do not share all their image tokens.

    An image's prefix is the longest run of real tokens its rows all start with, less one when a row is nothing but
    that run, so that every row keeps a suffix to predict its first token from.
    """
    images = image_index_C.tolist()
    groups: dict[int, list[int]] = {}
    for c, image in enumerate(images):
        groups.setdefault(image, []).append(c)
    if len(groups) == len(images):
        return None
    rows = [ids[mask.bool()] for ids, mask in zip(input_ids_CT, attention_mask_CT)]
    lengths = []
    for members in groups.values():
        shortest = min(len(rows[c]) for c in members)
        first = rows[members[0]][:shortest]
        same = torch.stack([rows[c][:shortest] == first for c in members]).all(0)
        common = int(same.long().cumprod(0).sum())
        length = min(common, shortest - 1)
        image_positions = (first == image_token_id).nonzero()
        if len(image_positions) == 0 or length <= int(image_positions[-1]):
            return None
        lengths.append(length)
    group_of = {image: g for g, image in enumerate(groups)}
    row_group = [group_of[image] for image in images]
    prefix_ids, prefix_mask = _left_pad([rows[members[0]][:n] for members, n in zip(groups.values(), lengths)],
                                        pad_id)
    suffix_ids, suffix_mask = _left_pad([row[lengths[g]:] for row, g in zip(rows, row_group)], pad_id)
    device = input_ids_CT.device
    return SharedPrefix(
        group_image=torch.tensor(list(groups), dtype=torch.long, device=device),
        row_group=torch.tensor(row_group, dtype=torch.long, device=device),
        prefix_ids=prefix_ids, prefix_mask=prefix_mask,
        prefix_len=torch.tensor(lengths, dtype=torch.long, device=device),
        suffix_ids=suffix_ids, suffix_mask=suffix_mask,
    )


def _left_pad(seqs: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """1-D id tensors -> (N, L) ids left-padded with `pad_id`, and (N, L) long masks (0 on the padding)."""
    width = max(len(s) for s in seqs)
    ids = seqs[0].new_full((len(seqs), width), pad_id)
    mask = torch.zeros(len(seqs), width, dtype=torch.long, device=seqs[0].device)
    for n, seq in enumerate(seqs):
        ids[n, width - len(seq):] = seq
        mask[n, width - len(seq):] = 1
    return ids, mask
