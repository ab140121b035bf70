"""solo-learn's augmentation pipeline, batched: one call crops and distorts a whole batch of
decoded images, each sample with its own random parameters.

Framework-free (torch, numpy). The parameters of sample ``s`` and crop ``c`` are a pure function
of (``keys[s]``, ``c``) — ``keys`` come from ``seeded.sample_seed(seed, epoch, index)`` — drawn
by a counter-based generator (``seeding.mix_seeds`` of key and counter), so a sample's crops do not depend on the batch it is
in, the loader's workers, or a resume. What each step draws follows torchvision and solo-learn
(``solo.data.pretrain_dataloader.build_transform_pipeline``), in the same order:

* ``rrc``: ``RandomResizedCrop`` (10 tries of scale x aspect ratio in [3/4, 4/3], then the
  centre-crop fallback), resized with PIL's antialiased bicubic filter as two matrix products
  (PIL rounds to 8 bits between its passes; this does not). ``rrc.enabled: false`` resizes the
  whole (square) image.
* ``color_jitter``: brightness, contrast, saturation (hue must be 0), each factor uniform in
  [max(0, 1 - v), 1 + v], in a random order, applied with ``prob``.
* ``grayscale`` (ITU-R 601 weights, as PIL's ``L``), ``gaussian_blur`` (sigma uniform in
  [0.1, 2], PIL's radius; replicated borders), ``solarization`` (threshold 128 / 255) and
  ``horizontal_flip``, each with its ``prob``; then normalisation by ``mean`` / ``std``.

Not reproduced (an error names the key): ``color_jitter.hue`` > 0, ``equalization.prob`` > 0.
"""
import functools
import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from solo_semppl.seeding import SEED_BITS, mix_seeds

GREY = (0.299, 0.587, 0.114)
BLUR_SIGMA = (0.1, 2.0)
RRC_TRIES, RRC_RATIO = 10, (3.0 / 4.0, 4.0 / 3.0)
# uniforms drawn per crop, by position: 4 per RRC try, then jitter (apply, 4 factors, 4 order
# keys), grayscale, blur (apply, sigma), solarization, flip
U_JITTER = 4 * RRC_TRIES
U_GREY, U_BLUR, U_SOLAR, U_FLIP = U_JITTER + 9, U_JITTER + 10, U_JITTER + 12, U_JITTER + 13
DRAWS = U_FLIP + 1
TABLE_PIXELS = 64


def uniforms(keys: Sequence[int], crop: int, count: int = DRAWS) -> torch.Tensor:
    """[len(keys), count] float64 uniforms in [0, 1), a pure function of (key, crop, position)."""
    counters = np.arange(crop * count, (crop + 1) * count, dtype=np.uint64)
    bits = mix_seeds(np.asarray(keys, dtype=np.uint64)[:, None], counters[None, :])
    return torch.from_numpy((bits >> np.uint64(SEED_BITS - 53)).astype(np.float64) * 2.0**-53)


@dataclass(frozen=True)
class CropSpec:
    """One entry of solo-learn's ``augmentations`` list, as numbers."""

    size: int
    num_crops: int
    rrc: bool = True
    scale: Tuple[float, float] = (0.08, 1.0)
    jitter_prob: float = 0.0
    jitter: Tuple[float, float, float] = (0.0, 0.0, 0.0)  # brightness, contrast, saturation
    grey_prob: float = 0.0
    blur_prob: float = 0.0
    solar_prob: float = 0.0
    flip_prob: float = 0.0
    mean: Tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: Tuple[float, float, float] = (0.229, 0.224, 0.225)


def crop_boxes(u: torch.Tensor, height: int, width: int, spec: CropSpec) -> torch.Tensor:
    """[N, 4] (top, left, h, w) of torchvision's RandomResizedCrop.get_params for each row of ``u``."""
    if not spec.rrc:
        return torch.tensor([[0.0, 0.0, height, width]], dtype=torch.float64).expand(u.size(0), 4)
    tries = u[:, :U_JITTER].view(-1, RRC_TRIES, 4)
    area = height * width * (spec.scale[0] + tries[..., 0] * (spec.scale[1] - spec.scale[0]))
    log_lo, log_hi = math.log(RRC_RATIO[0]), math.log(RRC_RATIO[1])
    ratio = torch.exp(log_lo + tries[..., 1] * (log_hi - log_lo))
    w, h = torch.round(torch.sqrt(area * ratio)), torch.round(torch.sqrt(area / ratio))
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    top, left = torch.floor(tries[..., 2] * (height - h + 1)), torch.floor(tries[..., 3] * (width - w + 1))
    first = ok.to(torch.uint8).argmax(1, keepdim=True)
    box = torch.stack([top, left, h, w], -1).gather(1, first[..., None].expand(-1, 1, 4))[:, 0]
    in_ratio = width / height
    if in_ratio < RRC_RATIO[0]:
        fw, fh = width, round(width / RRC_RATIO[0])
    elif in_ratio > RRC_RATIO[1]:
        fw, fh = round(height * RRC_RATIO[1]), height
    else:
        fw, fh = width, height
    fallback = torch.tensor([(height - fh) // 2, (width - fw) // 2, fh, fw], dtype=torch.float64)
    return torch.where(ok.any(1, keepdim=True), box, fallback)


def cubic(t: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """PIL's bicubic kernel (a = -0.5), support |t| < 2."""
    t = t.abs()
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((t - 5) * t + 8) * t * a - 4 * a
    return torch.where(t < 1, near, torch.where(t < 2, far, torch.zeros_like(t)))


def resample_matrix(start: torch.Tensor, length: torch.Tensor, pixels: int, size: int) -> torch.Tensor:
    """[N, size, pixels] rows of PIL's antialiased bicubic resize of the span [start, start +
    length) of ``pixels`` input pixels to ``size`` output pixels (PIL crops first, so pixels
    outside the span get no weight)."""
    scale = (length / size)[:, None, None]
    support = scale.clamp(min=1.0)
    centre = start[:, None, None] + (torch.arange(size, dtype=torch.float64)[None, :, None] + 0.5) * scale
    pixel = torch.arange(pixels, dtype=torch.float64)[None, None, :]
    inside = (pixel >= start[:, None, None]) & (pixel < (start + length)[:, None, None])
    weights = cubic((pixel + 0.5 - centre) / support) * inside
    return (weights / weights.sum(2, keepdim=True)).float()


@functools.lru_cache(maxsize=8)
def resample_table(pixels: int, size: int) -> torch.Tensor:
    """[pixels, pixels + 1, size, pixels]: ``resample_matrix`` of every integer (start, length),
    computed once (2 MB for 32 px images and 16 px crops)."""
    start, length = torch.meshgrid(torch.arange(pixels), torch.arange(pixels + 1), indexing="ij")
    valid = (length >= 1) & (start + length <= pixels)
    table = torch.zeros(pixels, pixels + 1, size, pixels)
    table[valid] = resample_matrix(start[valid].double(), length[valid].double(), pixels, size)
    return table


def resample_rows(start: torch.Tensor, length: torch.Tensor, pixels: int, size: int) -> torch.Tensor:
    """``resample_matrix`` for integer spans: looked up in ``resample_table`` for small images
    (the table holds pixels^3 x size numbers), computed otherwise."""
    if pixels > TABLE_PIXELS:
        return resample_matrix(start, length, pixels, size)
    return resample_table(pixels, size)[start.long(), length.long()]


def resized_crops(images: torch.Tensor, boxes: torch.Tensor, flip: torch.Tensor, size: int) -> torch.Tensor:
    """Crops [N, C, size, size] of float ``images`` [N, C, H, W] at ``boxes``, resized as PIL's
    antialiased bicubic does (separable: rows @ image @ columns^T), mirrored where ``flip``."""
    n, c, height, width = images.shape
    top, left, h, w = boxes.T
    rows = resample_rows(top, h, height, size)
    columns = resample_rows(left, w, width, size)
    columns = torch.where(flip[:, None, None], columns.flip(1), columns)
    tall = torch.bmm(rows, images.transpose(1, 2).reshape(n, height, c * width)).view(n, size * c, width)
    out = torch.bmm(tall, columns.transpose(1, 2)).view(n, size, c, size).transpose(1, 2)
    return out.clamp_(0, 1).contiguous()


def grey(x: torch.Tensor) -> torch.Tensor:
    """[N, 1, H, W] luma of RGB ``x``."""
    return (x * x.new_tensor(GREY).view(1, 3, 1, 1)).sum(1, keepdim=True)


def color_jitter(x: torch.Tensor, u: torch.Tensor, spec: CropSpec) -> torch.Tensor:
    """torchvision's ColorJitter (no hue) on the rows where u[:, U_JITTER] < jitter_prob."""
    apply = (u[:, U_JITTER] < spec.jitter_prob).float().view(-1, 1, 1, 1)
    order = u[:, U_JITTER + 5:U_JITTER + 9].argsort(1)
    factors = [max(0.0, 1 - v) + u[:, U_JITTER + 1 + k] * (1 + v - max(0.0, 1 - v)) for k, v in enumerate(spec.jitter)]
    for position in range(4):
        for op, v in enumerate(spec.jitter):
            if v == 0:
                continue
            f = factors[op].float().view(-1, 1, 1, 1)
            if op == 0:
                changed = x * f
            elif op == 1:
                changed = f * x + (1 - f) * grey(x).mean((2, 3), keepdim=True)
            else:
                changed = f * x + (1 - f) * grey(x)
            here = apply * (order[:, position] == op).float().view(-1, 1, 1, 1)
            x = torch.lerp(x, changed.clamp(0, 1), here)
    return x


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of each image of ``x`` [N, C, H, W] with its own ``sigma`` [N]."""
    n, c, height, width = x.shape
    radius = min(math.ceil(3 * BLUR_SIGMA[1]), min(height, width) - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets[None] / sigma.float()[:, None]) ** 2)
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)
    flat = F.pad(x.reshape(1, n * c, height, width), (radius,) * 4, mode="replicate")
    flat = F.conv2d(flat, kernel.view(n * c, 1, 1, -1), groups=n * c)
    flat = F.conv2d(flat, kernel.view(n * c, 1, -1, 1), groups=n * c)
    return flat.view(n, c, height, width)


def augment(images: torch.Tensor, keys: Sequence[int], first_crop: int, spec: CropSpec) -> List[torch.Tensor]:
    """``spec.num_crops`` normalised crops [B, C, size, size] of uint8 ``images`` [B, C, H, W];
    crop ``first_crop + j`` of sample ``s`` is drawn from (``keys[s]``, ``first_crop + j``)."""
    b, _, height, width = images.shape
    u = torch.cat([uniforms(keys, first_crop + j) for j in range(spec.num_crops)])
    x = images.float().div_(255).repeat(spec.num_crops, 1, 1, 1)
    x = resized_crops(x, crop_boxes(u, height, width, spec), u[:, U_FLIP] < spec.flip_prob, spec.size)
    if spec.jitter_prob > 0:
        x = color_jitter(x, u, spec)
    if spec.grey_prob > 0:
        x = torch.where((u[:, U_GREY] < spec.grey_prob).view(-1, 1, 1, 1), grey(x).expand_as(x), x)
    if spec.blur_prob > 0:
        blurred = (u[:, U_BLUR] < spec.blur_prob).nonzero()[:, 0]
        if len(blurred):
            sigma = BLUR_SIGMA[0] + u[blurred, U_BLUR + 1] * (BLUR_SIGMA[1] - BLUR_SIGMA[0])
            x[blurred] = gaussian_blur(x[blurred], sigma)
    if spec.solar_prob > 0:
        solar = (u[:, U_SOLAR] < spec.solar_prob).view(-1, 1, 1, 1) & (x >= 128 / 255)
        x = torch.where(solar, 1 - x, x)
    x = (x - x.new_tensor(spec.mean).view(1, -1, 1, 1)) / x.new_tensor(spec.std).view(1, -1, 1, 1)
    return list(x.contiguous().split(b))
