"""The Gaussian-noise layer and its parallel, counter-keyed stream (nn/noise.py)."""

import math

import pytest
import torch

from ganworks.nn.noise import GaussianNoise, ParallelGaussianStream, _mix, attach


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _draws(stream, shapes, iterations=3):
    out = []
    for _ in range(iterations):
        for s in shapes:
            out.append(stream.draw(torch.empty(s)).clone())
        stream.mark_period()
    return out


def test_stream_draws_are_standard_normal():
    x = ParallelGaussianStream(seed=3).draw(torch.empty(1000, 1000))
    n = x.numel()
    assert abs(x.mean().item()) < 5 / math.sqrt(n)
    assert abs(x.var().item() - 1) < 5 * math.sqrt(2 / n)
    # the tails of a normal, not of a uniform or a clipped variable: P(|x| > 3) = 0.0027
    assert abs((x.abs() > 3).float().mean().item() - 0.0027) < 0.0005
    # the two chunks come from unrelated generators: their rows are uncorrelated
    a, b = x[:500].flatten(), x[500:].flatten()
    assert abs(torch.corrcoef(torch.stack([a, b]))[0, 1].item()) < 5 / math.sqrt(a.numel())


def test_a_draw_depends_on_seed_and_draw_number_only(two_threads):
    shapes = [(300, 784), (300, 1000), (100, 250)]
    parallel = _draws(ParallelGaussianStream(seed=7), shapes)
    prefetched = _draws(ParallelGaussianStream(seed=7, prefetch=True), shapes)
    torch.set_num_threads(1)
    serial = _draws(ParallelGaussianStream(seed=7), shapes)
    for p, q, s in zip(parallel, prefetched, serial):
        assert torch.equal(p, q) and torch.equal(p, s)
    # every draw is new, and another seed gives other numbers
    assert not torch.equal(parallel[0][:100, :250], parallel[2][:100, :250])
    other = _draws(ParallelGaussianStream(seed=8), shapes, iterations=1)
    assert not torch.equal(parallel[0], other[0])


def test_prefetch_with_a_wrong_guess_still_gives_the_keyed_draw(two_threads):
    shapes = [(50, 20), (50, 30)]
    s = ParallelGaussianStream(seed=1, prefetch=True)
    _draws(s, shapes, iterations=2)  # the period is learnt: (50, 20), (50, 30)
    got = s.draw(torch.empty(7, 3))  # not what was prefetched
    ref = ParallelGaussianStream(seed=1)
    ref.count = 4
    assert torch.equal(got, ref.draw(torch.empty(7, 3)))


def test_stream_state_resumes_the_sequence():
    s = ParallelGaussianStream(seed=11)
    _draws(s, [(10, 10)], iterations=5)
    state = s.state_dict()
    nxt = s.draw(torch.empty(10, 10))
    t = ParallelGaussianStream(seed=0)
    t.load_state_dict(state)
    assert torch.equal(t.draw(torch.empty(10, 10)), nxt)


def test_layer_uses_attached_stream_and_is_identity_in_eval():
    model = torch.nn.Sequential(GaussianNoise(0.5), torch.nn.Linear(4, 4), GaussianNoise(0.3))
    stream = ParallelGaussianStream(seed=2)
    assert attach(model, stream) == 2
    x = torch.ones(6, 4)
    got = model[0](x)
    expected = ParallelGaussianStream(seed=2).draw(x) * 0.5 + 1
    assert torch.allclose(got, expected)
    model.eval()
    assert torch.equal(model[0](x), x)
    attach(model, None)
    assert model[0].stream is None


def test_seed_mixing_separates_neighbours():
    seeds = {_mix(1, i, c) for i in range(1000) for c in range(2)}
    assert len(seeds) == 2000 and all(0 <= s < 2**63 for s in seeds)
