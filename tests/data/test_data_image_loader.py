"""The robust image loader: every PIL mode to 8-bit RGB with the right values, clear errors for
truncated, corrupt and non-image files (no solo-learn needed)."""
import numpy as np
import pytest
from PIL import Image

from solo_semppl.data.image_loader import BadImageError, image_problem, load_rgb, to_rgb

from image_files import write_truncated


def solid(mode, size=(4, 4), value=0, **info):
    img = Image.new(mode, size, value)
    img.info.update(info)
    return img


def pixel(img):
    out = to_rgb(img)
    assert out.mode == "RGB" and np.asarray(out).dtype == np.uint8
    return tuple(np.asarray(out)[0, 0].tolist())


@pytest.mark.parametrize(
    "img, expected",
    [
        (solid("L", value=100), (100, 100, 100)),
        (solid("1", value=1), (255, 255, 255)),
        (solid("RGB", value=(1, 2, 3)), (1, 2, 3)),
        (solid("CMYK", value=(0, 0, 0, 0)), (255, 255, 255)),
        (solid("CMYK", value=(255, 0, 0, 0)), (0, 255, 255)),
        (solid("I;16", value=51000), (198, 198, 198)),   # 51000 / 65535 * 255, not clipped to 255
        (solid("I", value=65535), (255, 255, 255)),
        (solid("I", value=257), (1, 1, 1)),
        (solid("F", value=0.5), (128, 128, 128)),        # [0, 1], not 0.5 -> 0
        (solid("RGBA", value=(0, 0, 255, 255)), (0, 0, 255)),
        (solid("RGBA", value=(255, 0, 0, 0)), (255, 255, 255)),  # hidden colour of a transparent pixel unused
        (solid("RGBA", value=(0, 0, 0, 128)), (127, 127, 127)),  # half transparent black over white
        (solid("LA", value=(0, 0)), (255, 255, 255)),
        (solid("LA", value=(40, 255)), (40, 40, 40)),
    ],
    ids=["L", "1", "RGB", "CMYK-white", "CMYK-cyan", "I;16", "I-max", "I-257", "F", "RGBA-opaque",
         "RGBA-transparent", "RGBA-half", "LA-transparent", "LA-opaque"],
)
def test_every_mode_becomes_8bit_rgb_with_the_right_values(img, expected):
    assert pixel(img) == expected


def test_palette_transparency_is_composited_and_opaque_palettes_keep_their_colours():
    img = Image.new("P", (2, 1))
    img.putpalette([10, 20, 30, 200, 0, 0] + [0] * 762)
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    assert np.asarray(to_rgb(img)).tolist() == [[[10, 20, 30], [200, 0, 0]]]
    img.info["transparency"] = 1
    assert np.asarray(to_rgb(img)).tolist() == [[[10, 20, 30], [255, 255, 255]]]


def test_sixteen_bit_png_file_is_scaled_not_clipped(tmp_path):
    levels = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(levels).save(tmp_path / "deep.png")
    assert np.asarray(Image.open(tmp_path / "deep.png").convert("RGB"))[0, :, 0].tolist() == [0, 255, 255, 255]
    assert np.asarray(load_rgb(str(tmp_path / "deep.png")))[0, :, 0].tolist() == [0, 1, 128, 255]


@pytest.mark.parametrize("name", ["cut.jpg", "cut.png"])
def test_truncated_images_are_errors_naming_the_file(tmp_path, name):
    path = write_truncated(tmp_path / name)
    with pytest.raises(BadImageError, match=rf"{name}: cannot read the image .*truncated"):
        load_rgb(str(path))
    assert "truncated" in image_problem(str(path), full=True)


def test_header_scan_catches_truncated_png_but_only_full_scan_catches_truncated_jpeg(tmp_path):
    jpeg, png = write_truncated(tmp_path / "cut.jpg"), write_truncated(tmp_path / "cut.png")
    assert image_problem(str(png), full=False) is not None
    assert image_problem(str(jpeg), full=False) is None
    assert image_problem(str(jpeg), full=True) is not None


@pytest.mark.parametrize("content, message", [(b"", "empty file"), (b"not an image at all", "UnidentifiedImageError")])
def test_non_image_and_empty_files_are_bad_images(tmp_path, content, message):
    path = tmp_path / "fake.png"
    path.write_bytes(content)
    assert message in image_problem(str(path), full=False)
    with pytest.raises(BadImageError, match="fake.png"):
        load_rgb(str(path))


def test_bad_image_error_survives_a_dataloader_worker(tmp_path):
    """DataLoader workers re-raise an exception as ``type(msg)``: the file name must survive."""
    import torch

    from solo_semppl.data.folder_check import image_folder

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "bad.png").write_bytes(b"junk")
    loader = torch.utils.data.DataLoader(image_folder(str(tmp_path)), num_workers=1, collate_fn=lambda b: b)
    with pytest.raises(BadImageError, match="bad.png"):
        next(iter(loader))
