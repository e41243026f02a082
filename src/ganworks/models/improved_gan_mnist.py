"""The permutation-invariant MNIST semi-supervised GAN [Improved-GAN §6.1; docs/papers.md §A.2].

Discriminator: Gaussian noise σ 0.3 on the input, five weight-normalised dense ReLU layers
(1000-500-250-250-250) each followed by noise σ 0.5, and a weight-normalised dense layer to K=10
class logits. Weight-norm scales of the hidden layers are fixed after data-dependent init; the
output layer's is trainable. V ~ N(0, 0.1²), no epsilon in the norm (as the reference).

Generator: z ~ Uniform[0,1)^100 → [dense 500 (no bias) → BN without gain → softplus] × 2 → dense 784
with a trainable per-unit weight-norm scale (init 1, not data-initialised) → sigmoid. BN always uses
batch statistics. Dense weights start Glorot-uniform (Lasagne's default).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..nn import GaussianNoise, batch_norm_no_gain, weight_norm


def _units(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


class MnistDiscriminator(nn.Module):
    #: every example is computed on its own (no batch statistics), so batches may be concatenated
    #: into one forward pass (objective option ``fuse_d_passes``)
    samplewise = True

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 10,
        hidden: tuple[int, ...] = (1000, 500, 250, 250, 250),
        input_noise: float = 0.3,
        hidden_noise: float = 0.5,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        sizes = [math.prod(self.image_shape)] + [_units(h, width) for h in hidden]
        self.input_noise = GaussianNoise(input_noise)
        self.hidden = nn.ModuleList(
            nn.Sequential(
                weight_norm(nn.Linear(a, b), train_scale=False, weight_std=0.1),
                nn.ReLU(),
            )
            for a, b in zip(sizes[:-1], sizes[1:])
        )
        self.noise = nn.ModuleList(GaussianNoise(hidden_noise) for _ in hidden)
        self.out = weight_norm(nn.Linear(sizes[-1], num_classes), train_scale=True, weight_std=0.1)

    def forward(self, x: Tensor, with_features: bool = False):
        h = self.input_noise(x.flatten(1))
        features = h
        for layer, noise in zip(self.hidden, self.noise):
            features = layer(h)  # the last one is the feature-matching layer (before its noise)
            h = noise(features)
        logits = self.out(h)
        return (logits, features) if with_features else logits


class MnistGenerator(nn.Module):
    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        z_dim: int = 100,
        hidden: tuple[int, ...] = (500, 500),
        width: float = 1.0,
    ) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.z_dim = z_dim
        sizes = [z_dim] + [_units(h, width) for h in hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            dense = nn.Linear(a, b, bias=False)
            nn.init.xavier_uniform_(dense.weight)
            layers += [dense, batch_norm_no_gain(b), nn.Softplus()]
        self.body = nn.Sequential(*layers)
        out = nn.Linear(sizes[-1], math.prod(self.image_shape))
        nn.init.xavier_uniform_(out.weight)
        nn.init.zeros_(out.bias)
        # nn.l2normalize: trainable scale initialised to 1, no data-dependent init.
        self.out = weight_norm(out, train_scale=True, init_scale=None)
        with torch.no_grad():
            self.out.parametrizations.weight.original0.fill_(1.0)

    def sample_z(self, n: int, device=None) -> Tensor:
        """z ~ Uniform[0, 1)^z_dim (the reference's ``theano_rng.uniform``)."""
        return torch.rand(n, self.z_dim, device=device)

    def forward(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.out(self.body(z))).view(-1, *self.image_shape)


def mnist_discriminator(
    *,
    image_size: int = 28,
    channels: int = 1,
    num_classes: int = 10,
    width: float = 1.0,
    input_noise: float = 0.3,
    hidden_noise: float = 0.5,
) -> MnistDiscriminator:
    return MnistDiscriminator(
        (channels, image_size, image_size), num_classes, width=width, input_noise=input_noise, hidden_noise=hidden_noise
    )


def mnist_generator(*, image_size: int = 28, channels: int = 1, z_dim: int = 100, width: float = 1.0) -> MnistGenerator:
    return MnistGenerator((channels, image_size, image_size), z_dim, width=width)


BUILDERS = {
    "improved-gan-mnist-d": mnist_discriminator,
    "improved-gan-mnist-g": mnist_generator,
}
