"""The in-memory batched pipeline (``data.pipeline: tensor``): its pieces against brute-force
references (PIL's resize, torchvision's RandomResizedCrop.get_params written as a loop), crops
a pure function of (seed, epoch, index), and its augmentation statistics against solo-learn's
torchvision pipeline built from the same config."""
import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from conftest import needs_solo
from solo_semppl.data.batched_augment import (
    RRC_RATIO, RRC_TRIES, CropSpec, augment, crop_boxes, resized_crops, uniforms,
)
from solo_semppl.data.tensor_pipeline import BatchedCrops, check_pipeline, crop_specs

N = 1500  # samples per statistic: standard errors of about 1 %


def aug_entry(**changes):
    """One solo-learn augmentation entry (digits-like large crop, normalisation off), changed."""
    entry = {"rrc": {"enabled": True, "crop_min_scale": 0.3, "crop_max_scale": 1.0},
             "color_jitter": {"prob": 0.0, "brightness": 0.4, "contrast": 0.4, "saturation": 0.0, "hue": 0.0},
             "grayscale": {"prob": 0.0}, "gaussian_blur": {"prob": 0.0}, "solarization": {"prob": 0.0},
             "equalization": {"prob": 0.0}, "horizontal_flip": {"prob": 0.0},
             "crop_size": 16, "num_crops": 1, "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
    cfg = OmegaConf.create(entry)
    for key, value in changes.items():
        OmegaConf.update(cfg, key, value)
    return cfg


def run_cfg(*augs, pipeline="tensor"):
    return OmegaConf.create({"data": {"dataset": "custom", "format": "image_folder", "pipeline": pipeline},
                             "augmentations": [OmegaConf.to_container(a) for a in augs], "seed": 0})


def both_pipelines(image: np.ndarray, aug, n: int = N):
    """[n, 3, S, S] outputs of solo-learn's torchvision pipeline and of ``tensor`` for ``image``."""
    from solo.data.pretrain_dataloader import build_transform_pipeline

    torch.manual_seed(0)
    import random

    random.seed(0)
    pil = Image.fromarray(image)
    solo = build_transform_pipeline("custom", aug)
    reference = torch.stack([solo(pil) for _ in range(n)])
    (spec,) = crop_specs(run_cfg(aug))
    images = torch.from_numpy(image).permute(2, 0, 1)[None].expand(n, -1, -1, -1).contiguous()
    (ours,) = augment(images, list(range(n)), 0, spec)
    return reference, ours


def coordinate_image(size: int = 32) -> np.ndarray:
    """R = 8 x column, G = 8 x row: a crop's box can be read off its pixels."""
    y, x = np.mgrid[0:size, 0:size]
    return np.stack([x * 8, y * 8, np.zeros_like(x)], -1).astype(np.uint8)


def assert_close_distributions(a: torch.Tensor, b: torch.Tensor, tol: float):
    """Means and 10 / 50 / 90 % quantiles of two samples agree within ``tol``."""
    qs = torch.tensor([0.1, 0.5, 0.9], dtype=a.dtype)
    assert abs(float(a.mean() - b.mean())) < tol, (float(a.mean()), float(b.mean()))
    assert torch.allclose(a.quantile(qs), b.quantile(qs), atol=tol), (a.quantile(qs), b.quantile(qs))


# -- pieces against brute-force references ----------------------------------------------------

def reference_get_params(u, height, width, scale):
    """torchvision's RandomResizedCrop.get_params, line by line, with ``u`` as its random numbers."""
    area = height * width
    for t in range(RRC_TRIES):
        target_area = area * (scale[0] + u[4 * t] * (scale[1] - scale[0]))
        log_ratio = (math.log(RRC_RATIO[0]), math.log(RRC_RATIO[1]))
        aspect = math.exp(log_ratio[0] + u[4 * t + 1] * (log_ratio[1] - log_ratio[0]))
        w, h = int(round(math.sqrt(target_area * aspect))), int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return (int(u[4 * t + 2] * (height - h + 1)), int(u[4 * t + 3] * (width - w + 1)), h, w)
    in_ratio = width / height
    if in_ratio < RRC_RATIO[0]:
        w, h = width, int(round(width / RRC_RATIO[0]))
    elif in_ratio > RRC_RATIO[1]:
        h, w = height, int(round(height * RRC_RATIO[1]))
    else:
        w, h = width, height
    return ((height - h) // 2, (width - w) // 2, h, w)


@pytest.mark.parametrize("shape,scale", [((32, 32), (0.3, 1.0)), ((20, 48), (0.08, 1.0)), ((40, 12), (0.9, 1.0))])
def test_crop_boxes_match_torchvision_get_params_written_as_a_loop(shape, scale):
    spec = CropSpec(size=8, num_crops=1, scale=scale)
    u = uniforms(list(range(300)), 0)
    boxes = crop_boxes(u, *shape, spec)
    expected = [reference_get_params(row.tolist(), *shape, scale) for row in u]
    assert boxes.long().tolist() == [list(b) for b in expected]


@pytest.mark.parametrize("box,flip", [((3, 4, 20, 25), False), ((0, 0, 32, 32), True), ((10, 2, 7, 9), False)])
def test_resized_crop_matches_pil_crop_and_bicubic_resize(box, flip):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    top, left, h, w = box
    pil = Image.fromarray(image).crop((left, top, left + w, top + h)).resize((16, 16), Image.BICUBIC)
    if flip:
        pil = pil.transpose(Image.FLIP_LEFT_RIGHT)
    expected = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255).permute(2, 0, 1)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    out = resized_crops(x, torch.tensor([box], dtype=torch.float64), torch.tensor([flip]), 16)[0]
    # PIL rounds to 8 bits between its two passes; an upscale (box 7 x 9 to 16) shows it most
    assert (out - expected).abs().mean() < 1.0 / 255 and (out - expected).abs().max() < 12.0 / 255


def test_uniforms_are_a_pure_function_of_key_crop_and_position():
    a = uniforms([5, 6, 7], 2)
    assert torch.equal(a[1:], uniforms([6, 7], 2)) and not torch.equal(a, uniforms([5, 6, 7], 3))
    assert 0 <= float(a.min()) and float(a.max()) < 1


def test_a_samples_crops_do_not_depend_on_its_batch():
    """The resume and worker invariance rest on this: crops of (seed, epoch, index) only."""
    specs = crop_specs(run_cfg(aug_entry(**{"color_jitter.prob": 0.8, "gaussian_blur.prob": 0.5,
                                            "solarization.prob": 0.3, "horizontal_flip.prob": 0.5}),
                               aug_entry(crop_size=8, num_crops=2)))
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    crops = BatchedCrops(images, list(range(10)), specs, seed=3)
    batch = crops.__getitems__([(2, i) for i in range(10)])
    alone = crops.__getitems__([(2, 7), (2, 4)])
    for big, small in zip(batch[1], alone[1]):
        assert torch.allclose(big[[7, 4]], small, atol=1e-6)
    other_epoch = crops.__getitems__([(3, 7)])
    assert not torch.allclose(other_epoch[1][0][0], batch[1][0][7])
    assert batch[2].tolist() == list(range(10)) and [c.shape[-1] for c in batch[1]] == [16, 8, 8]


# -- statistics against solo-learn's torchvision pipeline ---------------------------------------

@needs_solo
def test_crop_scale_and_aspect_ratio_match_solo_learn():
    reference, ours = both_pipelines(coordinate_image(), aug_entry())

    def box_stats(out):  # the crop's extent in source pixels, from the coordinate channels
        width = (out[:, 0].amax((1, 2)) - out[:, 0].amin((1, 2))) * 255 / 8 + 1
        height = (out[:, 1].amax((1, 2)) - out[:, 1].amin((1, 2))) * 255 / 8 + 1
        return width * height / 32**2, torch.log(width / height)

    (ref_area, ref_ratio), (our_area, our_ratio) = box_stats(reference), box_stats(ours)
    assert_close_distributions(ref_area, our_area, 0.03)
    assert_close_distributions(ref_ratio, our_ratio, 0.04)


@needs_solo
def test_colour_jitter_rate_and_ranges_match_solo_learn():
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, :16], image[:, 16:] = 64, 192  # two grey levels: brightness moves the mean, contrast the gap
    aug = aug_entry(**{"rrc.enabled": False, "crop_size": 32, "color_jitter.prob": 0.8})
    reference, ours = both_pipelines(image, aug)
    for stat in (lambda o: o.mean((1, 2, 3)), lambda o: o[:, 0, :, 24].mean(1) - o[:, 0, :, 8].mean(1)):
        assert_close_distributions(stat(reference), stat(ours), 0.03)
    unchanged = lambda o: ((o - torch.from_numpy(image).permute(2, 0, 1) / 255).abs().amax((1, 2, 3)) < 2 / 255)
    assert abs(float(unchanged(reference).float().mean() - unchanged(ours).float().mean())) < 0.04


@needs_solo
@pytest.mark.parametrize("key,detect", [
    ("horizontal_flip.prob", lambda o: o[:, 0, :, 0].mean(1) > o[:, 0, :, -1].mean(1)),
    ("solarization.prob", lambda o: o[:, 1].mean((1, 2)) < 0.5),
    ("grayscale.prob", lambda o: (o[:, 0] - o[:, 2]).abs().amax((1, 2)) < 1 / 255),
    ("gaussian_blur.prob", lambda o: (o[:, 0, :, 1:] - o[:, 0, :, :-1]).abs().mean((1, 2)) < 0.7),
])
def test_flip_solarization_grayscale_and_blur_rates_match_solo_learn(key, detect):
    image = coordinate_image()
    image[..., 1] = 200  # G above the solarization threshold (128): solarized it becomes 55
    if key == "gaussian_blur.prob":  # a 1-pixel checkerboard in R: a blur of sigma >~ 0.4 flattens it
        image[..., 0] = ((np.indices((32, 32)).sum(0) % 2) * 255).astype(np.uint8)
    aug = aug_entry(**{"rrc.enabled": False, "crop_size": 32, key: 0.3})
    reference, ours = both_pipelines(image, aug)
    ref_rate, our_rate = detect(reference).float().mean(), detect(ours).float().mean()
    assert 0.2 < float(ref_rate) < 0.35, f"the detector does not see {key} in solo-learn's output"
    assert abs(float(ref_rate - our_rate)) < 0.04


# -- config errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("changes,message", [
    ({"color_jitter.hue": 0.1}, r"augmentations\[0\]\.color_jitter\.hue = 0\.1: data\.pipeline = 'tensor' does not"),
    ({"equalization.prob": 0.2}, r"augmentations\[0\]\.equalization\.prob = 0\.2"),
])
def test_an_augmentation_the_fast_path_cannot_reproduce_is_named(changes, message):
    with pytest.raises(ValueError, match=message):
        check_pipeline(run_cfg(aug_entry(**changes)))


def test_an_unknown_pipeline_is_named_with_the_supported_ones():
    with pytest.raises(ValueError, match=r"data\.pipeline = 'pil': expected one of \['torchvision', 'tensor'\]"):
        check_pipeline(run_cfg(aug_entry(), pipeline="pil"))
    check_pipeline(run_cfg(aug_entry(**{"color_jitter.hue": 0.1}), pipeline="torchvision"))  # per-image path: fine


def test_images_of_different_sizes_are_named(tmp_path):
    from solo_semppl.data.tensor_pipeline import decoded_images

    class Folder:
        samples = [(str(tmp_path / "a.png"), 0), (str(tmp_path / "b.png"), 1)]
        targets = [0, 1]

        @staticmethod
        def loader(path):
            return Image.new("RGB", (8, 8) if path.endswith("a.png") else (8, 6))

    with pytest.raises(ValueError, match=r"one size: .*b\.png is 8 x 6, .*a\.png is 8 x 8"):
        decoded_images(Folder())
