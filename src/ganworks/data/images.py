"""Opening one image file with errors that name it: not an image, or too large to be a dataset image.

``open_image`` reads only the header before deciding, so a 12000×12000 PNG is refused before its
pixels are decoded (Pillow would only warn, then decode hundreds of MiB); a file that is not an image
is a ``DataError`` naming it, never Pillow's ``UnidentifiedImageError``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import DataError

#: most pixels an image of a dataset may have (8192 × 8192); GAN datasets are far smaller
MAX_IMAGE_PIXELS = 8192 * 8192


def open_image(path: str | Path, mode: str | None = None):
    """The image at ``path`` (a loaded ``PIL.Image``, converted to ``mode`` if given)."""
    from PIL import Image

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError:
        raise DataError(
            f"image {path} is too large (more than {MAX_IMAGE_PIXELS} pixels, at most "
            f"8192x8192): remove it or shrink it"
        ) from None
    except (OSError, ValueError) as e:
        raise DataError(
            f"cannot read image {path} ({type(e).__name__}: not an image file Pillow can open): remove or replace it"
        ) from None
    with image:
        w, h = image.size
        if w * h > MAX_IMAGE_PIXELS:
            raise DataError(
                f"image {path} is {w}x{h} pixels, too large for a dataset image (at most "
                f"{MAX_IMAGE_PIXELS} pixels, e.g. 8192x8192): remove it or shrink it"
            )
        try:
            image.load()
            return image.convert(mode) if mode and image.mode != mode else image.copy()
        except (OSError, ValueError, SyntaxError) as e:
            raise DataError(
                f"cannot decode image {path} ({type(e).__name__}: truncated or damaged): remove or replace it"
            ) from None
