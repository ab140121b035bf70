"""Robust image loading for image folders: every PIL mode to 8-bit RGB, clear errors for bad files.

torchvision's default loader calls ``Image.convert("RGB")``, which clips 16- and 32-bit
grey levels at 255 (a 16-bit scan turns white), maps float images in [0, 1] to black and shows
the hidden colour of fully transparent pixels. Here:

* ``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ``RGB`` ...: PIL's own conversion to RGB.
* ``I;16*`` and ``I`` (16-bit PNG / TIFF open as one of these): the 0-65535 range is scaled to
  0-255 (values outside it are clipped).
* ``F`` (32-bit float): taken as [0, 1], scaled to 0-255 and clipped.
* Transparency (``RGBA``, ``LA``, ``PA``, ``RGBa`` and palette images with a
  transparent colour): composited over white, what a viewer shows on a white page; the colour
  under a fully transparent pixel is never used.

A file that cannot be opened or decoded completely (not an image, truncated, corrupt) raises
:class:`BadImageError` naming the file. This relies on PIL's default
``ImageFile.LOAD_TRUNCATED_IMAGES = False``; code that sets it True makes PIL pad truncated
images with grey instead.
"""
import os
from typing import Optional

import numpy as np
from PIL import Image

SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa")
READ_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


class BadImageError(ValueError):
    """An image file that cannot be read; the message names the file and the reason."""


def to_rgb(img: Image.Image) -> Image.Image:
    """An 8-bit RGB copy of ``img`` following the rules of the module docstring."""
    if img.mode in SIXTEEN_BIT_MODES or img.mode == "F":
        scale = 255.0 if img.mode == "F" else 255.0 / 65535.0
        grey = np.clip(np.asarray(img, dtype=np.float64) * scale + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ALPHA_MODES:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def decode_rgb(path: str) -> Image.Image:
    """Opens and fully decodes ``path`` as 8-bit RGB; PIL's own exceptions on failure."""
    with Image.open(path) as img:
        img.load()
        return to_rgb(img)


def why(err: Exception) -> str:
    return f"cannot read the image ({type(err).__name__}: {err})"


def load_rgb(path: str) -> Image.Image:
    """The image folders' loader: ``decode_rgb``, or BadImageError naming the file."""
    try:
        return decode_rgb(path)
    except READ_ERRORS as err:
        raise BadImageError(f"{path}: {why(err)}") from err


def image_problem(path: str, full: bool) -> Optional[str]:
    """None for a readable image, else why not. ``full=False`` reads the header and checks the
    file structure (PIL's ``verify``: PNG chunk CRCs; cheap, no pixel decoding); ``full=True``
    decodes every pixel (also catches truncated JPEG data)."""
    try:
        if os.path.getsize(path) == 0:
            return "empty file"
        if full:
            decode_rgb(path)
        else:
            with Image.open(path) as img:
                img.verify()
    except READ_ERRORS as err:
        return why(err)
    return None
