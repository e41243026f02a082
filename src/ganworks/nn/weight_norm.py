"""Weight normalization with the Improved-GAN reference's data-dependent initialisation.

Weight normalization (Salimans & Kingma, 2016), as used by every Improved-GAN model
(docs/papers.md §A.2, §A.3, §C.4b): W = g · V / ‖V‖, the norm taken per output unit over all input
axes. ``weight_norm`` puts ``torch.nn.utils.parametrizations.weight_norm`` on a Linear, Conv2d or
ConvTranspose2d layer and adds what the reference has and PyTorch lacks:

* a scale g that can be fixed (the reference's hidden layers: ``train_scale=False``) or trainable
  (its output layers);
* data-dependent initialisation (``data_dependent_init``): one forward pass on an init batch
  (500 training examples in the reference) standardises every marked layer's pre-activation per
  unit/channel to mean 0 and std ``init_scale`` (1, or 0.1 for the CIFAR/SVHN output layers), by
  setting g ← g·init_scale/std and b ← (b − mean)·init_scale/std, layer after layer, each layer
  seeing the already-initialised output of the one before. Any other layer with a method
  ``data_dependent_init_(x) -> output`` (e.g. minibatch discrimination) is initialised in the
  same pass, on its input.

Deviation: the CIFAR/SVHN reference adds 1e-6 inside the square root of ‖V‖²; PyTorch's
parametrization does not. With ‖V‖² of order 1 or more the relative difference is below 1e-6.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrizations, parametrize

_WN_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _output_dim(module: nn.Module) -> int:
    """Axis of ``module.weight`` that indexes output units (1 for transposed convolutions)."""
    return 1 if isinstance(module, nn.modules.conv._ConvTransposeNd) else 0


def weight_norm(
    module: nn.Module,
    train_scale: bool = True,
    init_scale: float | None = 1.0,
    weight_std: float | None = None,
) -> nn.Module:
    """Weight-normalise ``module`` in place and return it.

    Args:
        module: a Linear, ConvNd or ConvTransposeNd layer (with a bias for data-dependent init).
        train_scale: whether g is trained (False fixes it after data-dependent init).
        init_scale: the target std of the pre-activation for ``data_dependent_init``; ``None``
            excludes the layer from it (g stays at ‖V‖, i.e. W = V at first).
        weight_std: if given, V is re-drawn from N(0, weight_std²) (0.1 for the MNIST dense
            layers, 0.05 for the CIFAR/SVHN convolutions).
    """
    if not isinstance(module, _WN_LAYERS):
        raise TypeError(f"weight_norm supports Linear/Conv/ConvTranspose layers, got {type(module).__name__}")
    if weight_std is not None:
        with torch.no_grad():
            module.weight.normal_(0.0, weight_std)
    if init_scale is not None and module.bias is None:
        raise ValueError("data-dependent init needs a bias: build the layer with bias=True")
    parametrizations.weight_norm(module, name="weight", dim=_output_dim(module))
    scale(module).requires_grad_(train_scale)
    module.ddi_init_scale = init_scale
    return module


def scale(module: nn.Module) -> nn.Parameter:
    """The weight-norm scale g of a layer normalised by ``weight_norm`` (shape broadcastable to W)."""
    return module.parametrizations.weight.original0


def is_weight_normed(module: nn.Module) -> bool:
    return parametrize.is_parametrized(module, "weight") and hasattr(module, "ddi_init_scale")


def needs_data_dependent_init(model: nn.Module) -> bool:
    """Whether ``data_dependent_init`` would change anything in ``model``."""
    return any(
        (is_weight_normed(m) and m.ddi_init_scale is not None) or hasattr(m, "data_dependent_init_")
        for m in model.modules()
    )


@torch.no_grad()
def data_dependent_init(model: nn.Module, *inputs, **kwargs):
    """Run ``model(*inputs, **kwargs)`` once, initialising every weight-normalised layer on the way.

    Layers that define ``data_dependent_init_(x)`` run it on their input and their output is
    replaced by what it returns. Each weight-normalised layer's output is standardised per output unit (statistics over every axis but
    the channel axis 1, population std) and the layer's g and b are rescaled so that later
    forwards reproduce the standardised output. The model runs in whatever mode it is in (the
    reference runs this pass in training mode, noise on). Returns the model's output.
    """
    handles = []

    def hook(layer: nn.Module, _inputs, out: Tensor) -> Tensor:
        dims = [d for d in range(out.dim()) if d != 1]
        mean = out.mean(dim=dims)
        std = (out - _expand(mean, out)).square().mean(dim=dims).sqrt()
        k = layer.ddi_init_scale / std
        g = scale(layer)
        g.mul_(k.view(g.shape))
        layer.bias.copy_((layer.bias - mean) * k)
        return (out - _expand(mean, out)) * _expand(k, out)

    for module in model.modules():
        if is_weight_normed(module) and module.ddi_init_scale is not None:
            handles.append(module.register_forward_hook(hook))
        elif hasattr(module, "data_dependent_init_"):
            handles.append(module.register_forward_hook(lambda m, inputs, out: m.data_dependent_init_(inputs[0])))
    try:
        return model(*inputs, **kwargs)
    finally:
        for h in handles:
            h.remove()


def _expand(per_channel: Tensor, like: Tensor) -> Tensor:
    return per_channel.view(1, -1, *([1] * (like.dim() - 2)))
