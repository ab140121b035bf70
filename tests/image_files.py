"""Image files for the data and bad-input tests: a labelled folder, a file that is not an
image, a truncated image (no solo-learn needed)."""
import numpy as np
from PIL import Image


def make_folder(root, classes=3, per_class=4, size=8):
    """``root/class<c>/<c>_<i>.png``, each image's red channel = its class."""
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.new("RGB", (size, size), (c, i, 0)).save(root / f"class{c}" / f"{c}_{i}.png")
    return root


def corrupt(path):
    path.write_bytes(b"this is not a png")
    return path


def write_truncated(path, fraction=0.8, size=32):
    pixels = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * fraction)])
    return path
