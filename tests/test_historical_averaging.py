"""Historical averaging [Improved-GAN §3.3]: running mean of past parameters and λ‖θ − θ̄‖²."""

import pytest
import torch
from torch import nn

from ganworks.regularizers import HISTORICAL_AVERAGING_WEIGHT, HistoricalAverage


def _set(model, w, b):
    with torch.no_grad():
        model.weight.copy_(torch.tensor(w))
        model.bias.copy_(torch.tensor(b))


def test_gradient_matches_hand_computation():
    model = nn.Linear(2, 1)
    _set(model, [[1.0, 2.0]], [0.0])
    ha = HistoricalAverage(model, weight=0.5)
    _set(model, [[3.0, -2.0]], [1.0])
    ha.update(model)
    _set(model, [[2.0, 0.0]], [5.0])
    ha.update(model)
    # θ̄ = mean of the three values: w̄ = [2, 0], b̄ = 2
    _set(model, [[4.0, 1.0]], [-1.0])
    penalty = ha.penalty(model)
    # λ Σ (θ − θ̄)² = 0.5·((4−2)² + (1−0)² + (−1−2)²) = 0.5·14 = 7
    assert penalty.item() == pytest.approx(7.0)
    penalty.backward()
    # ∂/∂θ = 2λ(θ − θ̄): w → [2, 1], b → −3
    torch.testing.assert_close(model.weight.grad, torch.tensor([[2.0, 1.0]]))
    torch.testing.assert_close(model.bias.grad, torch.tensor([-3.0]))


def test_running_mean_equals_mean_of_all_values():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    history = [torch.cat([p.detach().flatten().clone() for p in model.parameters()])]
    ha = HistoricalAverage(model)
    assert ha.penalty(model).item() == 0.0
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(7):
        opt.zero_grad()
        model(torch.randn(5, 3)).square().mean().backward()
        opt.step()
        ha.update(model)
        history.append(torch.cat([p.detach().flatten().clone() for p in model.parameters()]))
    mean = torch.stack(history).mean(dim=0)
    current = history[-1]
    expected = HISTORICAL_AVERAGING_WEIGHT * (current - mean).square().sum()
    torch.testing.assert_close(ha.penalty(model), expected)
    assert ha.count == 8


def test_frozen_parameters_are_left_out():
    model = nn.Linear(2, 2)
    model.bias.requires_grad_(False)
    ha = HistoricalAverage(model)
    assert set(ha.average) == {"weight"}
    with torch.no_grad():
        model.bias.add_(10.0)
    assert ha.penalty(model).item() == 0.0


def test_state_dict_round_trip():
    torch.manual_seed(1)
    model = nn.Linear(3, 2)
    ha = HistoricalAverage(model, weight=0.3)
    with torch.no_grad():
        model.weight.add_(1.0)
    ha.update(model)
    state = ha.state_dict()
    with torch.no_grad():
        model.weight.add_(1.0)
    restored = HistoricalAverage(nn.Linear(3, 2), weight=1.0)
    restored.load_state_dict(state)
    assert restored.count == 2 and restored.weight == 0.3
    torch.testing.assert_close(restored.penalty(model), ha.penalty(model))
    ha.update(model)  # the saved state is a copy, not a view of the live average
    assert not torch.equal(state["average"]["weight"], ha.average["weight"])
    with pytest.raises(ValueError):
        restored.load_state_dict({"weight": 1.0, "count": 1, "average": {}})


def test_negative_weight_rejected():
    with pytest.raises(ValueError):
        HistoricalAverage(nn.Linear(1, 1), weight=-1.0)
