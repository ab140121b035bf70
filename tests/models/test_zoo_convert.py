"""Conversion of the official SemPPL (haiku) checkpoints, checked against a NumPy forward pass.

The haiku trees are generated here from SPEC section 11's naming, and the reference forward
pass runs on those trees directly (NHWC, HWIO, TF SAME padding, BN in inference mode), so it
shares nothing with the converter or torchvision.
"""
import pickle
import sys
import types
from collections.abc import Mapping

import numpy as np
import pytest
import torch

from solo_semppl.zoo import build_backbone, convert_official_file, convert_official_tree, official_resnet, use_tf_same_padding
from solo_semppl.zoo.convert_official import plan_official_conversion, read_official_pickle
from solo_semppl.zoo.state import load_into
from zoo_testing import SEP, haiku_tree, no_onednn, random_maker  # noqa: F401  (no_onednn: autouse fixture)


def with_device_axis(tree):
    """Every leaf stacked with a different second device copy (so index 0 must be taken)."""
    return {m: {k: np.stack([v, v + 1]) for k, v in leaves.items()} for m, leaves in tree.items()}


# ---------------------------------------------------------------- NumPy reference forward (haiku semantics)
def same_pads(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def np_conv(x, w, stride):
    """SAME conv via im2col; x (N, H, W, C), w (kh, kw, C, O)."""
    kh, kw, _, c_out = w.shape
    (pt, pb), (pl, pr) = same_pads(x.shape[1], kh, stride), same_pads(x.shape[2], kw, stride)
    x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh, ow = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    cols = np.stack([x[:, i:i + stride * oh:stride, j:j + stride * ow:stride, :] for i in range(kh) for j in range(kw)], axis=3)
    return cols.reshape(x.shape[0], oh, ow, -1) @ w.reshape(-1, c_out).astype(np.float64)


def np_maxpool(x):
    (pt, pb), (pl, pr) = same_pads(x.shape[1], 3, 2), same_pads(x.shape[2], 3, 2)
    x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=-np.inf)
    oh, ow = (x.shape[1] - 3) // 2 + 1, (x.shape[2] - 3) // 2 + 1
    return np.max([x[:, i:i + 2 * oh:2, j:j + 2 * ow:2, :] for i in range(3) for j in range(3)], axis=0)


def np_forward(params, state, blocks, images, root="res_net50"):
    """Pooled features of the haiku ResNet (v1, bottleneck) for NCHW ``images``."""
    def bn(x, name):
        m = f"{root}{SEP}{name}"
        mean = state[m + SEP + "mean_ema"]["average"].reshape(-1)
        var = state[m + SEP + "var_ema"]["average"].reshape(-1)
        return (x - mean) / np.sqrt(var + 1e-5) * params[m]["scale"].reshape(-1) + params[m]["offset"].reshape(-1)

    def conv(x, name, stride):
        return np_conv(x, params[f"{root}{SEP}{name}"]["w"], stride)

    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    x = np.transpose(images.astype(np.float64), (0, 2, 3, 1))
    x = np_maxpool(relu(bn(conv(x, "initial_conv", 2), "initial_batchnorm")))
    for g, n_blocks in enumerate(blocks):
        for b in range(n_blocks):
            prefix = f"block_group_{g}{SEP}block_{b}{SEP}"
            stride = 2 if (g > 0 and b == 0) else 1
            shortcut = bn(conv(x, prefix + "shortcut_conv", stride), prefix + "shortcut_batchnorm") if b == 0 else x
            out = relu(bn(conv(x, prefix + "conv_0", 1), prefix + "batchnorm_0"))
            out = relu(bn(conv(out, prefix + "conv_1", stride), prefix + "batchnorm_1"))
            out = bn(conv(out, prefix + "conv_2", 1), prefix + "batchnorm_2")
            x = relu(out + shortcut)
    return x.mean(axis=(1, 2))


class FrozenMapping(Mapping):
    """A read-only mapping like haiku's old FlatMapping (not a dict)."""

    def __init__(self, data):
        self._data = {k: FrozenMapping(v) if isinstance(v, dict) else v for k, v in data.items()}

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)


BLOCKS = (2, 1, 1, 1)


@pytest.fixture(scope="module")
def tiny_tree():
    return haiku_tree(BLOCKS, 1, random_maker(0))


def converted_model(params, state, same):
    result = convert_official_tree(params, state, blocks=BLOCKS)
    model = load_into(official_resnet(BLOCKS, result.width), result.state_dict, "test").eval()
    return use_tf_same_padding(model) if same else model


@pytest.fixture(scope="module")
def references(tiny_tree):
    """{size: (images, NumPy features)} for an even and an odd input size."""
    out = {}
    for size in (32, 33):
        images = np.random.default_rng(size).normal(size=(2, 3, size, size)).astype(np.float32)
        out[size] = images, np_forward(*tiny_tree, BLOCKS, images)
    return out


def features(model, images):
    with torch.no_grad():
        return model(torch.from_numpy(images)).double().numpy()


@pytest.mark.parametrize("container,device_axis", [(dict, False), (FrozenMapping, True)])
def test_converted_model_matches_numpy_forward_with_same_padding(tiny_tree, references, container, device_axis):
    params, state = tiny_tree
    if device_axis:
        params, state = with_device_axis(params), with_device_axis(state)
    model = converted_model(container(params), container(state), same=True)
    for images, ref in references.values():
        out = features(model, images)
        assert out.shape == (2, 2048)
        assert np.abs(ref).max() > 0.1  # the check below is not trivially met
        np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)


def test_padding_switch_matters_at_even_sizes_only(tiny_tree, references):
    plain = converted_model(*tiny_tree, same=False)
    for size, differs in ((32, True), (33, False)):
        images, ref = references[size]
        assert (np.abs(features(plain, images) - ref).max() > 1e-2) == differs


def test_batchnorm_uses_average_not_hidden_and_counter_is_tracked(tiny_tree):
    params, state = tiny_tree
    result = convert_official_tree(params, state, blocks=BLOCKS)
    ema = state[f"res_net50{SEP}initial_batchnorm{SEP}mean_ema"]
    np.testing.assert_array_equal(result.state_dict["bn1.running_mean"].numpy(), ema["average"].reshape(-1))
    assert int(result.state_dict["bn1.num_batches_tracked"]) == int(ema["counter"])
    w = params[f"res_net50{SEP}block_group_0{SEP}block_1{SEP}conv_1"]["w"]
    for o in (0, 5):  # OIHW[o, i, h, w] == HWIO[h, w, i, o], checked by explicit indexing
        for i, h, x in ((0, 0, 0), (3, 2, 1)):
            assert result.state_dict["layer1.1.conv2.weight"][o, i, h, x].item() == w[h, x, i, o]
    assert result.ignored_modules == ["projector"] and result.arch is None and result.width == 1


@pytest.mark.parametrize("depth,width", [(50, 1), (50, 4), (200, 2)])
def test_full_size_trees_are_consumed_completely(depth, width):
    zeros = lambda shape, kind: np.broadcast_to(np.float32(0), shape)  # noqa: E731  (no memory)
    params, state = haiku_tree({50: (3, 4, 6, 3), 200: (3, 24, 36, 3)}[depth], width, zeros, root=f"res_net{depth}")
    plan, info = plan_official_conversion(params, state)
    assert info.arch == f"official_resnet{depth}_w{width}" and info.width == width
    expected = build_backbone(info.arch, device="meta").state_dict()
    assert sorted(key for key, _, _ in plan) == sorted(expected)
    assert expected["conv1.weight"].shape == (64 * width, 3, 7, 7)  # the stem is widened too
    assert expected["layer4.2.conv3.weight"].shape[0] == 2048 * width


@pytest.mark.parametrize("change,message", [
    ("unknown", "unknown key"), ("missing", "without a source"), ("shape", "wrong shape"), ("root", "one haiku ResNet root"),
])
def test_unsupported_layouts_are_clear_errors(tiny_tree, change, message):
    params, state = (dict(t) for t in tiny_tree)
    sk = f"res_net50{SEP}block_group_0{SEP}block_0{SEP}sk_conv"
    if change == "unknown":
        params[sk] = {"w": np.zeros((3, 3, 4, 4), np.float32)}
    elif change == "missing":
        del state[f"res_net50{SEP}initial_batchnorm{SEP}var_ema"]
    elif change == "shape":
        params[f"res_net50{SEP}initial_batchnorm"] = {"scale": np.ones((1, 1, 1, 3)), "offset": np.ones((1, 1, 1, 64))}
    else:
        params = {m.replace("res_net50", "sk_res_net50"): v for m, v in params.items()}
        state = {m.replace("res_net50", "sk_res_net50"): v for m, v in state.items()}
    with pytest.raises(ValueError, match=message) as err:
        convert_official_tree(params, state, blocks=BLOCKS)
    if change == "unknown":
        assert "sk_conv/w" in str(err.value)


def fake_dill_dumps(data):
    """Pickle ``data`` the way dill does for arrays (via ``dill._dill._create_array``), without dill."""
    fake = types.ModuleType("dill._dill")

    def _create_array(f, args, state, npdict=None):  # pragma: no cover - only pickled by reference
        raise AssertionError

    _create_array.__module__, _create_array.__qualname__ = "dill._dill", "_create_array"
    fake._create_array = _create_array

    class DillLike(pickle.Pickler):
        def reducer_override(self, obj):
            if type(obj) is np.ndarray:
                f, args, state = obj.__reduce__()
                return _create_array, (f, args, state, None)
            return NotImplemented

    import io
    saved = {name: sys.modules.get(name) for name in ("dill", "dill._dill")}
    sys.modules.update({"dill": types.ModuleType("dill"), "dill._dill": fake})
    try:
        buffer = io.BytesIO()
        DillLike(buffer, protocol=2).dump(data)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return buffer.getvalue()


def test_pickle_file_converts(tmp_path, tiny_tree):
    data = {"experiment_state": {"online_params": tiny_tree[0], "online_state": tiny_tree[1]}, "step": np.int64(5)}
    path = tmp_path / "resnet_tiny.pkl"
    path.write_bytes(pickle.dumps(data, protocol=2))
    summary = convert_official_file(path, tmp_path / "out", blocks=BLOCKS)
    saved = torch.load(summary["file"], weights_only=True)
    direct = convert_official_tree(*tiny_tree, blocks=BLOCKS).state_dict
    assert saved.keys() == direct.keys() and all(torch.equal(saved[k], direct[k]) for k in direct)
    assert summary["file"].endswith(f"resnet_tiny-{summary['sha256'][:8]}.pth") and summary["tf_same_padding"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == [f"resnet_tiny-{summary['sha256'][:8]}.pth"]


def test_dill_written_arrays_are_read_without_dill(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    tree = {"res_net50/~/initial_conv": {"w": rng.normal(size=(2, 7, 7, 3, 64)).astype(np.float32)},
            "res_net50/~/initial_batchnorm/~/mean_ema": {"counter": np.array([3, 3], np.int32)}}
    blob = fake_dill_dumps({"experiment_state": {"online_params": tree, "online_state": {}}, "step": np.int64(5)})
    assert b"dill._dill" in blob and b"_create_array" in blob
    monkeypatch.setitem(sys.modules, "dill", None)  # importing dill now fails
    path = tmp_path / "dill.pkl"
    path.write_bytes(blob)
    params, state = read_official_pickle(path)
    for module, leaves in tree.items():
        for leaf, value in leaves.items():
            assert params[module][leaf].dtype == value.dtype
            np.testing.assert_array_equal(params[module][leaf], value)


def test_unknown_pickle_class_is_refused_unless_trusted(tmp_path):
    path = tmp_path / "mapping.pkl"
    tree = FrozenMapping({"res_net50/~/initial_conv": {"w": np.zeros((7, 7, 3, 64), np.float32)}})
    path.write_bytes(pickle.dumps({"experiment_state": {"online_params": tree, "online_state": {}}}, protocol=2))
    with pytest.raises(ValueError, match="FrozenMapping"):
        read_official_pickle(path)
    params, _ = read_official_pickle(path, trusted=True)
    assert isinstance(params, FrozenMapping)


def test_non_official_pickle_and_bad_tree_write_nothing(tmp_path, tiny_tree):
    path = tmp_path / "other.pkl"
    path.write_bytes(pickle.dumps({"params": {}}, protocol=2))
    with pytest.raises(ValueError, match="not an official SemPPL checkpoint"):
        convert_official_file(path, tmp_path / "out")
    bad = {"experiment_state": {"online_params": {"sk_res_net50/~/conv": {"w": np.zeros(3)}}, "online_state": {}}}
    path.write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(ValueError, match="unsupported layout"):
        convert_official_file(path, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
