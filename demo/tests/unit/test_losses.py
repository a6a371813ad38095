"""demo.losses.pointing_ce against hand-computed values."""

import pytest
import torch

from demo.losses import pointing_ce


def test_pointing_ce_is_low_when_the_map_takes_the_object_and_refuses_an_empty_target():
    target = torch.zeros(2, 6, dtype=torch.bool)
    target[0, :2] = target[1, 4] = True
    follows = torch.where(target, 5.0, -5.0)
    assert pointing_ce(follows, target, scale=1.0) < 0.01
    assert pointing_ce(-follows, target, scale=1.0) > 5.0
    flat = torch.zeros(2, 6)  # uniform map: -log(share of the target's patches)
    torch.testing.assert_close(pointing_ce(flat, target, scale=1.0), -torch.log(torch.tensor([2 / 6, 1 / 6])).mean())
    with pytest.raises(ValueError, match="at least one target patch"):
        pointing_ce(flat, torch.zeros(2, 6, dtype=torch.bool), scale=1.0)
