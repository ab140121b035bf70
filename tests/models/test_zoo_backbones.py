"""Backbone builders and TF SAME padding, against explicit loops and torchvision."""
import itertools
import math

import pytest
import torch
import torchvision
from torch import nn

from solo_semppl.zoo import build_backbone, official_resnet, use_tf_same_padding
from solo_semppl.zoo.same_padding import TFSameConv2d, TFSameMaxPool2d, same_padding
from zoo_testing import no_onednn  # noqa: F401  (autouse fixture)


def meta_shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def torchvision_shapes(name):
    with torch.device("meta"):
        model = getattr(torchvision.models, name)()
    return {k: v for k, v in meta_shapes(model).items() if not k.startswith("fc.")}


def test_official_width_1_is_torchvision_resnet50():
    with torch.device("meta"):
        assert meta_shapes(official_resnet(50, 1)) == torchvision_shapes("resnet50")


@pytest.mark.parametrize("width", [2, 4])
def test_width_multiplies_every_channel_including_the_stem(width):
    base = torchvision_shapes("resnet50")
    with torch.device("meta"):
        wide = meta_shapes(official_resnet(50, width))
    assert wide.keys() == base.keys()
    for key, shape in base.items():
        if key.endswith("num_batches_tracked"):
            continue
        expected = tuple(d * width if (i < 2 and d != 3) else d for i, d in enumerate(shape))  # O, I scaled; RGB input not
        assert wide[key] == expected, key
    # torchvision's wide_resnet50_2 is different: stem and block outputs keep their width
    assert torchvision_shapes("wide_resnet50_2")["conv1.weight"][0] == 64 != wide["conv1.weight"][0]


def test_resnet200_blocks_and_general_block_lists():
    model = build_backbone("official_resnet200_w2", device="meta")
    assert [len(getattr(model, f"layer{g}")) for g in range(1, 5)] == [3, 24, 36, 3]
    tiny = official_resnet([1, 2, 1, 1], 1)
    assert [len(getattr(tiny, f"layer{g}")) for g in range(1, 5)] == [1, 2, 1, 1]
    assert tiny.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 2048)


def test_cifar_stem_is_solo_learns():
    model = build_backbone("resnet18", "cifar")
    conv = model.conv1
    assert (conv.kernel_size, conv.stride, conv.padding, conv.bias) == ((3, 3), (1, 1), (2, 2), None)
    assert isinstance(model.maxpool, nn.Identity) and isinstance(model.fc, nn.Identity)
    assert model.eval()(torch.randn(1, 3, 8, 8)).shape == (1, 512)


@pytest.mark.parametrize("call,message", [
    (lambda: build_backbone("vit_small"), "arch"),
    (lambda: build_backbone("official_resnet34_w1"), "arch"),
    (lambda: build_backbone("resnet18", stem="tiny"), "stem"),
    (lambda: official_resnet(50, 0), "width"),
    (lambda: official_resnet(18, 1), "depth"),
    (lambda: official_resnet([1, 1, 1], 1), "depth"),
])
def test_bad_backbone_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_same_padding_known_cases():
    # SPEC 11: at even sizes, stem 7x7 pads 2/3, max-pool 0/1, strided 3x3 0/1; odd sizes symmetric
    assert same_padding((224, 224), (7, 7), (2, 2), (1, 1)) == (2, 3, 2, 3)
    assert same_padding((112, 112), (3, 3), (2, 2), (1, 1)) == (0, 1, 0, 1)
    assert same_padding((56, 56), (1, 1), (2, 2), (1, 1)) == (0, 0, 0, 0)
    assert same_padding((225, 9), (7, 3), (2, 2), (1, 1)) == (1, 1, 3, 3)


def loop_same_conv(x, w, stride, dilation):
    """SAME convolution by explicit loops; out size ceil(n / stride), padding per TF's definition."""
    _, c_in, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    oh, ow = math.ceil(h / stride), math.ceil(wd / stride)
    top = max((oh - 1) * stride + (kh - 1) * dilation + 1 - h, 0) // 2
    left = max((ow - 1) * stride + (kw - 1) * dilation + 1 - wd, 0) // 2
    out = torch.zeros(1, c_out, oh, ow, dtype=x.dtype)
    for o, y, z in itertools.product(range(c_out), range(oh), range(ow)):
        total = 0.0
        for c, i, j in itertools.product(range(c_in), range(kh), range(kw)):
            r, q = y * stride + i * dilation - top, z * stride + j * dilation - left
            if 0 <= r < h and 0 <= q < wd:
                total += float(x[0, c, r, q]) * float(w[o, c, i, j])
        out[0, o, y, z] = total
    return out


def loop_same_maxpool(x, k, stride):
    _, c_in, h, wd = x.shape
    oh, ow = math.ceil(h / stride), math.ceil(wd / stride)
    top = max((oh - 1) * stride + k - h, 0) // 2
    left = max((ow - 1) * stride + k - wd, 0) // 2
    out = torch.empty(1, c_in, oh, ow, dtype=x.dtype)
    for c, y, z in itertools.product(range(c_in), range(oh), range(ow)):
        values = [float(x[0, c, r, q]) for r in range(y * stride - top, y * stride - top + k)
                  for q in range(z * stride - left, z * stride - left + k) if 0 <= r < h and 0 <= q < wd]
        out[0, c, y, z] = max(values)
    return out


@pytest.mark.parametrize("size,kernel,stride,dilation,dtype,seed", [
    ((6, 6), 3, 2, 1, torch.float32, 0), ((7, 5), 3, 2, 1, torch.float64, 1), ((8, 8), 7, 2, 1, torch.float32, 2),
    ((6, 7), 4, 3, 1, torch.float64, 3), ((9, 6), 3, 2, 2, torch.float32, 4), ((5, 5), 1, 2, 1, torch.float64, 5),
])
def test_tf_same_conv_and_pool_match_loops(size, kernel, stride, dilation, dtype, seed):
    torch.manual_seed(seed)
    x = torch.randn(1, 2, *size, dtype=dtype)
    conv = nn.Conv2d(2, 3, kernel, stride=stride, dilation=dilation, padding=kernel // 2, bias=False).to(dtype)
    pool = nn.MaxPool2d(kernel, stride=stride, padding=kernel // 2)
    model = use_tf_same_padding(nn.Sequential(conv, pool))
    assert isinstance(model[0], TFSameConv2d) and isinstance(model[1], TFSameMaxPool2d)
    with torch.no_grad():
        conv_out = model[0](x)
        torch.testing.assert_close(conv_out, loop_same_conv(x, conv.weight, stride, dilation))
        if dilation == 1:
            torch.testing.assert_close(model[1](x), loop_same_maxpool(x, kernel, stride))


def test_switch_replaces_strided_modules_only_and_keeps_keys():
    model = build_backbone("resnet18")
    keys = list(model.state_dict())
    x = torch.randn(1, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        plain = model(x)
        use_tf_same_padding(model)
        same = model(x)
    swapped = sorted(n for n, m in model.named_modules() if isinstance(m, (TFSameConv2d, TFSameMaxPool2d)))
    assert swapped == ["conv1", "layer2.0.conv1", "layer2.0.downsample.0", "layer3.0.conv1",
                       "layer3.0.downsample.0", "layer4.0.conv1", "layer4.0.downsample.0", "maxpool"]
    assert list(model.state_dict()) == keys
    assert not torch.allclose(plain, same, atol=1e-3)  # even size: the switch changes the output
