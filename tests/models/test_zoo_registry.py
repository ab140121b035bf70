"""The shipped zoo: tiny_cnn releases, relative URLs (files kept beside the manifest), the
checkpoint for upstream ``main_linear.py``, and every entry of the repository manifest."""
import json

import pytest
import torch

from solo_semppl.backbones import TinyCNN
from solo_semppl.zoo import build_backbone, export_release, load, publish, read_manifest, save_solo_checkpoint
from solo_semppl.zoo.backbones import arch_of, solo_backbone_of
from solo_semppl.zoo.manifest import REPO_MANIFEST, check_entry
from zoo_testing import make_solo_checkpoint


def test_tiny_cnn_arch_round_trips_with_solo_learn_names():
    assert arch_of("tiny_cnn", {"width": 8}) == "tiny_cnn_w8" and arch_of("tiny_cnn", None) == "tiny_cnn_w32"
    model = build_backbone("tiny_cnn_w8")
    assert isinstance(model, TinyCNN) and model.num_features == 32
    assert solo_backbone_of("tiny_cnn_w8") == ("tiny_cnn", {"width": 8})
    assert solo_backbone_of("resnet18") == ("resnet18", {})
    with pytest.raises(ValueError, match="stem"):
        build_backbone("tiny_cnn_w8", stem="cifar")
    with pytest.raises(ValueError, match="arch: .*tiny_cnn_w"):
        build_backbone("tiny_cnn_w0")
    with pytest.raises(ValueError, match="solo-learn has no backbone .*wide_resnet50_2"):
        solo_backbone_of("wide_resnet50_2")


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A tiny_cnn run exported and published with a relative URL into a fresh manifest."""
    root = tmp_path_factory.mktemp("zoo")
    torch.manual_seed(0)
    ckpt = make_solo_checkpoint(root / "run", dataset="custom", name="tiny-demo")
    args = json.loads((root / "run" / "args.json").read_text())
    args["backbone"] = {"name": "tiny_cnn", "kwargs": {"width": 4}}
    (root / "run" / "args.json").write_text(json.dumps(args))
    backbone = TinyCNN(4).state_dict()
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in backbone.items()}}, ckpt)
    manifest = root / "registry" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text(json.dumps({"schema_version": 1, "models": []}))
    for name in ("tiny-demo", "tiny-demo-2"):  # the second publish reads a manifest with a relative URL
        release = export_release(ckpt, root / "releases", name=name)
        weights = next(release.glob(f"{name}-????????.pth"))
        entry = publish(release, [f"weights/{weights.name}"], manifest=manifest)
    return manifest, weights, backbone, entry


def test_publish_with_a_relative_url_copies_the_file_beside_the_manifest(published, tmp_path):
    manifest, weights, backbone, entry = published
    assert entry["arch"] == "tiny_cnn_w4" and entry["urls"] == [f"weights/{weights.name}"]
    copy = manifest.parent / "weights" / weights.name
    assert copy.read_bytes() == weights.read_bytes()
    assert [e["urls"] for e in read_manifest(manifest)][1] == [copy.resolve().as_uri()]
    state = load("tiny-demo-2", cache_dir=tmp_path, manifest=manifest).state_dict()
    assert all(torch.equal(state[k], backbone[k]) for k in backbone)


def test_relative_urls_need_a_manifest_file_and_stay_below_it(published):
    _, _, _, entry = published
    with pytest.raises(ValueError, match="relative URLs .* need a manifest file"):
        read_manifest({"models": [entry]})
    with pytest.raises(ValueError, match="'urls' must be"):
        check_entry({**entry, "urls": ["../outside.pth"]})


def main_linear_load(backbone, ckpt_path):
    """What upstream ``main_linear.py`` does with ``pretrained_feature_extractor`` (solo-learn 9187ea3)."""
    state = torch.load(ckpt_path, map_location="cpu")["state_dict"]
    for k in list(state.keys()):
        if "backbone" in k:
            state[k.replace("backbone.", "")] = state[k]
        del state[k]
    return backbone.load_state_dict(state, strict=False)


def test_solo_checkpoint_loads_like_main_linear_reads_it(published, tmp_path):
    manifest, _, backbone, _ = published
    out = tmp_path / "tiny.ckpt"
    overrides = save_solo_checkpoint("tiny-demo", out, cache_dir=tmp_path, manifest=manifest)
    assert overrides == {"pretrained_feature_extractor": str(out), "backbone.name": "tiny_cnn",
                         "backbone.kwargs": {"width": 4}}
    fresh = TinyCNN(4)
    result = main_linear_load(fresh, out)
    assert not result.missing_keys and not result.unexpected_keys
    assert all(torch.equal(fresh.state_dict()[k], backbone[k]) for k in backbone)
    with pytest.raises(ValueError, match="out: main_linear.py reads a .ckpt"):
        save_solo_checkpoint("tiny-demo", tmp_path / "x.pth", cache_dir=tmp_path, manifest=manifest)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".ckpt", ".pth", ".part")) == ["tiny.ckpt"]


def test_solo_checkpoint_refuses_tf_same_padding(published, tmp_path):
    manifest, _, _, _ = published
    entry = {**read_manifest(manifest)[0], "tf_same_padding": True}
    with pytest.raises(ValueError, match="TF SAME"):
        save_solo_checkpoint(entry, tmp_path / "x.ckpt", cache_dir=tmp_path)
    assert not (tmp_path / "x.ckpt").exists()


@pytest.mark.parametrize("entry", read_manifest(REPO_MANIFEST), ids=lambda e: e["name"])
def test_every_repository_model_downloads_verifies_and_loads(entry, tmp_path):
    model = load(entry["name"], cache_dir=tmp_path).eval()
    assert model(torch.randn(2, 3, 16, 16)).shape[0] == 2
    assert (REPO_MANIFEST.parent / entry["card"]).is_file() and entry["metrics"]
