"""The [SEG] prompt projector: LLM hidden state -> SAM sparse prompt embedding."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SegPromptProjector(nn.Module):
    """Linear(d, d) -> ReLU -> Linear(d, prompt_dim), as LISA/SESAME/READ's `text_hidden_fcs[0]`."""

    def __init__(self, *, llm_dim: int, prompt_dim: int, init_gain: float = 1.0) -> None:
        """`init_gain` scales fc2's default initialisation (weights and bias); 1.0 is nn.Linear's default."""
        super().__init__()
        self.fc1 = nn.Linear(llm_dim, llm_dim)
        self.fc2 = nn.Linear(llm_dim, prompt_dim)
        if init_gain != 1.0:
            with torch.no_grad():
                self.fc2.weight.mul_(init_gain)
                self.fc2.bias.mul_(init_gain)

    def forward(self, seg_hidden_ND: torch.Tensor) -> torch.Tensor:
        """(N, d) [SEG] hidden states -> (N, prompt_dim) prompt embeddings."""
        return self.fc2(F.relu(self.fc1(seg_hidden_ND)))
