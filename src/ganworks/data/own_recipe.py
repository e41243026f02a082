"""Fitting the Improved-GAN recipe to your own images (dataset ``own``; docs/own-data.md).

``config.resolve`` calls :func:`fit_to_own_data` when ``data.name = "own"``. It reads the training
images at ``data.path`` (decoded once, then cached) and:

* picks the recipe by the images' channels, for the preset ``improved-gan/own-data``: grayscale
  images train the permutation-invariant MNIST models (the ``improved-gan/mnist-100`` recipe), colour
  images the CIFAR-10 models (``improved-gan/cifar10-4000``'s recipe, from
  ``improved-gan/_own-data-colour``, resolved again with the same overrides). Any other
  semi-supervised Improved-GAN preset given ``data.name=own`` keeps its own models;
* sets the image size to the models' own (28×28 for the MNIST model, 32×32 for the CIFAR-10 model);
  images of another size are resized to it (area-averaged down, bilinear up; the aspect ratio is not
  kept). The MNIST model is dense, so ``data.image_size`` may choose another size for it;
* fills in what the data says: the channels, the classes (``data.class_names``, the discriminator's
  ``num_classes``), the number of labeled images (``data.labels``), the absolute ``data.path``, and a
  one-line summary in ``meta.data`` that ``ganworks train`` prints in its run line.

This module sits on the data floor and imports nothing from ``config`` or ``train``: the colour
recipe comes in as a function from its caller (``config.resolve``), which resolves the preset.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError
from .own import has_test_split, load_own

OWN_PRESET = "improved-gan/own-data"
COLOUR_PRESET = "improved-gan/_own-data-colour"
#: the image size each model family is built for
NATIVE_SIZE = {"mnist": 28, "cifar": 32}


def model_family(name: str) -> str | None:
    """``"mnist"``, ``"cifar"`` (CIFAR-10 and SVHN models) or None for a model name."""
    if name.startswith("improved-gan-mnist"):
        return "mnist"
    if name.startswith(("improved-gan-cifar", "improved-gan-svhn")):
        return "cifar"
    return None


def fit_to_own_data(cfg: dict, colour_recipe: Callable[[], dict]) -> dict:
    """``cfg`` (resolved from its preset and the user's overrides) fitted to the images at ``data.path``.

    ``colour_recipe()`` returns :data:`COLOUR_PRESET` resolved with the same overrides; it is called
    only for colour images under the preset :data:`OWN_PRESET`.
    """
    d = cfg["data"]
    if not d["path"]:
        return cfg  # loading the data says what is missing
    if cfg["objective"]["name"] != "semi-supervised":
        raise ConfigError(
            f"dataset 'own' is for semi-supervised training, not objective "
            f"{cfg['objective']['name']!r}: use the preset {OWN_PRESET}"
        )
    if d["validation"]:
        raise ConfigError(
            "data.validation holds out training images, most of which are unlabeled on your own "
            "data: put labeled test images in <data.path>/test/<class>/ instead"
        )
    path = Path(d["path"]).expanduser().resolve()
    data = load_own(Path.cwd(), "train", path=str(path))
    c, h, w = data.image_shape
    if cfg["meta"].get("preset") == OWN_PRESET and c == 3:
        cfg = colour_recipe()
        cfg["meta"]["preset"] = OWN_PRESET
        d = cfg["data"]
    g, dis = cfg["model"]["generator"], cfg["model"]["discriminator"]
    family = model_family(dis["name"])
    if family is None or model_family(g["name"]) != family:
        raise ConfigError(
            f"dataset 'own' trains the Improved-GAN models, not {g['name']!r}/{dis['name']!r}: "
            f"use the preset {OWN_PRESET}"
        )
    size = d["image_size"] or NATIVE_SIZE[family]
    if family == "cifar" and size != 32:
        raise ConfigError(
            f"the CIFAR-10 models make 32x32 images, not {size}x{size}: drop data.image_size "
            f"(your images are resized to 32x32)"
        )
    n_lab, names = len(data.labeled), list(data.class_names)
    if d["labels"] and d["labels"] != n_lab:
        raise ConfigError(
            f"data.labels={d['labels']} but {path} holds {n_lab} labeled images: drop data.labels "
            f"(every labeled image at data.path is used)"
        )
    d.update(path=str(path), channels=c, image_size=size, labels=n_lab, class_names=names)
    for model in (g, dis):
        model.update(image_size=size, channels=c)
    dis["num_classes"] = len(names)
    resized = f" (resized from {w}x{h})" if (h, w) != (size, size) else ""
    cfg["meta"]["data"] = (
        f"{path}: {n_lab} labeled images in {len(names)} classes + {len(data) - n_lab} unlabeled, "
        f"{'grayscale' if c == 1 else 'colour'}, at {size}x{size}{resized} -> models {g['name']} / {dis['name']}"
        + ("" if has_test_split(str(path)) else "; no test split (no test error is measured)")
    )
    return cfg
