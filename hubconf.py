"""torch.hub entry points: the Improved-GAN models, built fresh or with a trained run's weights.

    import torch
    clf = torch.hub.load("/path/to/ganworks", "improved_gan_mnist", source="local", weights="runs/mine")
    clf.predict(images).names        # the run's averaged D as a classifier (ganworks.classify.Classifier)

``weights``: a run directory or checkpoint written by ``ganworks train`` (``None``: a freshly
initialised model, ``**options`` going to the model builder). ``part``: ``"classifier"`` (default),
``"discriminator"`` (the bare D: images in the run's pixel scale -> K logits) or ``"generator"``
(``G(G.sample_z(n))``). ``averaged``: the run's averaged weights when it kept them.
Grayscale runs of ``improved-gan/own-data`` are ``improved_gan_mnist``, colour ones ``improved_gan_cifar10``.
"""

import sys
from pathlib import Path

_SRC = Path(__file__).resolve().parent / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:  # this checkout's ganworks, installed or not
    sys.path.insert(0, str(_SRC))

dependencies = ["torch", "numpy", "PIL"]

#: entry point -> (generator, discriminator, pixel scale of a fresh model)
_FAMILIES = {
    "improved_gan_mnist": ("improved-gan-mnist-g", "improved-gan-mnist-d", "zero_one"),
    "improved_gan_cifar10": ("improved-gan-cifar-g", "improved-gan-cifar-d", "improved_gan_cifar"),
    "improved_gan_svhn": ("improved-gan-svhn-g", "improved-gan-svhn-d", "minus_one_one"),
}


def _load(entry, weights, part, averaged, device, options):
    from ganworks import api
    from ganworks.errors import ConfigError

    g_name, d_name, scale = _FAMILIES[entry]
    if part not in ("classifier", "discriminator", "generator"):
        raise ConfigError(f"part must be 'classifier', 'discriminator' or 'generator', not {part!r}")
    if weights is None:
        from ganworks.classify import Classifier
        from ganworks.models import build_model

        model = build_model(g_name if part == "generator" else d_name, **options).to(device).eval()
        if part == "classifier":
            return Classifier(model, scale, [str(i) for i in range(model.num_classes)])
        return model
    if options:
        raise ConfigError(f"{', '.join(options)}: a run's weights come with its own model options; drop them")
    run = api.load_run(weights)
    got = run.config["model"]["discriminator"]["name"]
    if got != d_name:
        other = next((k for k, v in _FAMILIES.items() if v[1] == got), None)
        hint = f"load it with {other!r}" if other else "it is not an Improved-GAN run"
        raise ConfigError(f"{weights} is a run of {got!r}, not {d_name!r}: {hint}")
    if part == "generator":
        return api.load_generator(run, averaged=averaged, device=device)
    if part == "discriminator":
        return api.load_discriminator(run, averaged=averaged, device=device)
    return api.load_classifier(run, averaged=averaged, device=device)


def improved_gan_mnist(weights=None, part="classifier", averaged=True, device="cpu", **options):
    """The permutation-invariant MNIST models (Improved-GAN §6.1), for grayscale images."""
    return _load("improved_gan_mnist", weights, part, averaged, device, options)


def improved_gan_cifar10(weights=None, part="classifier", averaged=True, device="cpu", **options):
    """The CIFAR-10 models (Improved-GAN §6.2, feature matching), for 32x32 colour images."""
    return _load("improved_gan_cifar10", weights, part, averaged, device, options)


def improved_gan_svhn(weights=None, part="classifier", averaged=True, device="cpu", **options):
    """The SVHN models (Improved-GAN §6.3), for 32x32 colour images."""
    return _load("improved_gan_svhn", weights, part, averaged, device, options)
