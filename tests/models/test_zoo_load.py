"""``zoo.load``: manifest entry -> download -> torchvision backbone with checked weights."""
import hashlib
import io

import pytest
import torch
from torch import nn

from solo_semppl.zoo import load
from solo_semppl.zoo.same_padding import TFSameConv2d
from zoo_testing import no_onednn, serving, solo_backbone_state  # noqa: F401


@pytest.fixture(scope="module")
def served():
    """A resnet18 (CIFAR stem) backbone file on a local server, and its manifest entry maker."""
    buffer = io.BytesIO()
    torch.save(solo_backbone_state(), buffer)
    blob = buffer.getvalue()
    with serving({"/r18-cifar.pth": ("good", blob)}) as server:
        def entry(**extra):
            return {"name": "r18-cifar", "arch": "resnet18", "stem": "cifar", "urls": [server.url("/r18-cifar.pth")],
                    "sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob), **extra}
        yield entry


def test_load_by_name_gives_the_weights(served, tmp_path):
    model = load("r18-cifar", cache_dir=tmp_path, manifest={"models": [served()]})
    expected = solo_backbone_state()
    state = model.state_dict()
    assert state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in expected)
    assert isinstance(model.fc, nn.Identity) and model.conv1.kernel_size == (3, 3)
    assert model.eval()(torch.randn(1, 3, 8, 8)).shape == (1, 512)


def test_manifest_arch_must_fit_the_file(served, tmp_path):
    with pytest.raises(ValueError, match=r"does not fit the model: .*missing key\(s\): layer1.2"):
        load(served(arch="resnet34"), cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"shape mismatch.*conv1.weight"):
        load(served(stem="imagenet"), cache_dir=tmp_path)


@pytest.mark.parametrize("flag,override,swapped", [(False, None, False), (True, None, True), (True, False, False)])
def test_tf_same_padding_follows_the_entry_unless_overridden(served, tmp_path, flag, override, swapped):
    model = load(served(tf_same_padding=flag), cache_dir=tmp_path, tf_same_padding=override)
    assert isinstance(model.layer2[0].conv1, TFSameConv2d) == swapped
