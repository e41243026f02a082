"""Additive Gaussian noise layer [Improved-GAN reference code; docs/papers.md §A.2, §A.5],
and where its draws come from.

The MNIST discriminator adds N(0, 0.3²) to its input and N(0, 0.5²) after every hidden layer; the
CIFAR/SVHN minibatch-discrimination discriminator adds N(0, 0.2²) to its input. Noise is added in
training mode only; in eval mode the layer is the identity.

Where the standard normal draws come from (``train.noise``):

* ``"global"`` (default): ``torch.randn_like`` from PyTorch's global generator, one call per layer,
  as the reference draws from one stream.
* ``"parallel"``: a ``ParallelGaussianStream`` attached to the layers. PyTorch's CPU normal
  sampler is serial (one core fills a whole tensor), and the permutation-invariant MNIST step
  draws about 1.5M numbers per iteration, which on two cores is a large share of the step
  (benchmarks/results/improved_gan_step_compiled.md). The stream splits each draw's rows into two
  chunks and fills them concurrently from two generators seeded from (seed, draw number, chunk),
  so a draw is a pure function of (seed, draw number, shape): the same numbers on 1 or 2 threads,
  and a checkpoint only needs the draw counter to resume bit-exact.
* ``"prefetch"``: the same stream and the same numbers, the next draw computed on a background
  thread (its shape predicted from one iteration earlier) while the current phase runs.

Every mode draws i.i.d. N(0, 1) noise: the distribution, the layers and the update are the
reference's; only which pseudo-random numbers are used differs, so a run is reproducible under
its seed and its ``train.noise``.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import torch
from torch import Tensor, nn

#: ``train.noise`` values (see the module docstring)
NOISE_MODES = ("global", "parallel", "prefetch")


class GaussianNoise(nn.Module):
    """``x + σ·ε`` with ε ~ N(0, I) when training, ``x`` otherwise.

    ε comes from ``self.stream`` when a ``ParallelGaussianStream`` is attached (``attach``), else
    from ``torch.randn_like`` (PyTorch's global generator).
    """

    def __init__(self, sigma: float) -> None:
        super().__init__()
        if sigma < 0:
            raise ValueError(f"noise sigma must be >= 0, got {sigma}")
        self.sigma = float(sigma)
        self.stream: ParallelGaussianStream | None = None

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.sigma == 0.0:
            return x
        eps = self.stream.draw(x) if self.stream is not None else torch.randn_like(x)
        # scaled and added in place: no temporary besides the noise
        return eps.mul_(self.sigma).add_(x)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


def _mix(*words: int) -> int:
    """A 63-bit seed from integers (SplitMix64's finaliser over their running sum): well spread
    for neighbouring inputs, so the generators of neighbouring draws and chunks are unrelated."""
    h = 0x9E3779B97F4A7C15
    for w in words:
        h = (h + (w & 0xFFFFFFFFFFFFFFFF) * 0xBF58476D1CE4E5B9 + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 30
        h = (h * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 27
        h = (h * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h >> 1


class ParallelGaussianStream:
    """Standard normal draws keyed by (seed, draw number, chunk), filled in parallel chunks.

    Draw number ``i`` of shape ``(n, ...)`` is a tensor whose rows are split into ``CHUNKS``
    contiguous blocks (``torch.tensor_split``); block ``c`` is filled by ``normal_`` from a fresh
    generator on the tensor's device seeded with ``_mix(seed, i, c)``. With more than one torch
    thread the blocks are filled at the same time (``normal_`` releases the GIL); ``prefetch``
    computes draw ``i + 1`` in the background, assuming the shape of the draw one period (one
    training iteration) before it. Neither changes the numbers (both act on the CPU only; on CUDA
    the blocks are filled one after the other, asynchronously). ``state_dict`` holds the seed and
    the draw counter.
    """

    CHUNKS = 2

    def __init__(self, seed: int, prefetch: bool = False) -> None:
        self.seed = int(seed)
        self.count = 0
        self.prefetch = bool(prefetch)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="noise")
        self._shapes: deque = deque()  # shapes of the draws since the last ``mark_period``
        self._period: list | None = None  # the shapes of one whole iteration, in order
        self._ahead: tuple[int, tuple, Future] | None = None  # (draw number, shape, future)

    # ---- the numbers -----------------------------------------------------------------------
    def _fill_chunk(self, out: Tensor, index: int, chunk: int) -> None:
        g = torch.Generator(device=out.device)
        g.manual_seed(_mix(self.seed, index, chunk))
        out.normal_(generator=g)

    def _compute(self, index: int, shape: tuple, device: torch.device, parallel: bool) -> Tensor:
        out = torch.empty(shape, device=device)
        chunks = torch.tensor_split(out, self.CHUNKS) if out.dim() else (out.view(1),)
        if parallel and device.type == "cpu" and len(chunks) > 1 and torch.get_num_threads() > 1:
            rest = [self._pool.submit(self._fill_chunk, c, index, k) for k, c in enumerate(chunks[1:], 1)]
            self._fill_chunk(chunks[0], index, 0)
            for f in rest:
                f.result()
        else:
            for k, c in enumerate(chunks):
                self._fill_chunk(c, index, k)
        return out

    def draw(self, like: Tensor) -> Tensor:
        """The next draw, of ``like``'s shape, dtype and device (a new tensor the caller may modify)."""
        shape, device = tuple(like.shape), like.device
        index = self.count
        self.count += 1
        out = None
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            a_index, a_shape, fut = ahead
            got = fut.result()
            if a_index == index and a_shape == shape and got.device == device:
                out = got
        if out is None:
            out = self._compute(index, shape, device, parallel=True)
        self._shapes.append(shape)
        if self.prefetch and self._period and device.type == "cpu":
            n_shape = self._period[len(self._shapes) % len(self._period)]
            self._ahead = (index + 1, n_shape, self._pool.submit(self._compute, index + 1, n_shape, device, False))
        return out if out.dtype == like.dtype else out.to(like.dtype)

    def mark_period(self) -> None:
        """Called once per training iteration: the shapes drawn since the last call are one period
        (what ``prefetch`` expects next)."""
        if self._shapes:
            self._period = list(self._shapes)
        self._shapes.clear()

    # ---- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"seed": self.seed, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.seed, self.count = int(state["seed"]), int(state["count"])
        self._ahead = None

    def __deepcopy__(self, memo) -> ParallelGaussianStream:
        return self  # a copied model (e.g. the averaged D) draws from the same stream

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def attach(model: nn.Module, stream: ParallelGaussianStream | None) -> int:
    """Make every ``GaussianNoise`` layer of ``model`` draw from ``stream`` (``None``: the global
    generator again); returns how many layers it reached."""
    n = 0
    for m in model.modules():
        if isinstance(m, GaussianNoise):
            m.stream = stream
            n += 1
    return n
