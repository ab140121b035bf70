"""``solo-semppl zoo`` subcommands through ``cli.main(argv)``."""
import json
import pickle

from solo_semppl.zoo import backbones
from solo_semppl.zoo.cli import main
from zoo_testing import haiku_tree, make_solo_checkpoint, random_maker


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_export_publish_list_download_verify(tmp_path, capsys):
    ckpt = make_solo_checkpoint(tmp_path / "run")
    (tmp_path / "results.json").write_text(json.dumps([{"protocol": "linear", "command": "solo-semppl linear x",
                                                        "metrics": {"top1": 42.5}}]))
    manifest = tmp_path / "zoo" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text(json.dumps({"schema_version": 1, "models": []}))

    code, out, _ = run(capsys, "export", str(ckpt), "--out", str(tmp_path / "releases"), "--name", "r18",
                       "--results", str(tmp_path / "results.json"))
    release = tmp_path / "releases" / "r18"
    assert code == 0 and out.strip() == str(release)
    assert run(capsys, "verify", str(release))[:2] == (0, f"OK {release}: 5 files match SHA256SUMS\n")

    weights = next(release.glob("r18-*.pth"))
    code, out, _ = run(capsys, "publish", str(release), "--url", weights.as_uri(), "--manifest", str(manifest))
    assert code == 0 and json.loads(out)["urls"] == [weights.as_uri()]
    code, out, _ = run(capsys, "list", "--manifest", str(manifest))
    assert code == 0 and out.startswith("r18\tresnet18 (cifar stem)") and '"top1": 42.5' in out

    code, out, _ = run(capsys, "download", "r18", "--manifest", str(manifest), "--cache-dir", str(tmp_path / "cache"))
    cached = tmp_path / "cache" / "r18" / weights.name
    assert code == 0 and out.strip() == str(cached) and cached.read_bytes() == weights.read_bytes()
    assert run(capsys, "verify", str(cached), "--name", "r18", "--manifest", str(manifest))[0] == 0

    ckpt = tmp_path / "r18.ckpt"
    code, out, _ = run(capsys, "solo-ckpt", "r18", "--out", str(ckpt), "--manifest", str(manifest),
                       "--cache-dir", str(tmp_path / "cache"))
    assert code == 0 and out.split() == [f"pretrained_feature_extractor={ckpt}", "backbone.name=resnet18"]

    code, _, err = run(capsys, "verify", str(cached), "--sha256", "0" * 64)
    assert code == 1 and "differs from the expected" in err
    code, _, err = run(capsys, "download", "nope", "--manifest", str(manifest), "--cache-dir", str(tmp_path / "cache"))
    assert code == 1 and "known models: r18" in err
    (release / "MODEL_CARD.md").write_text("edited")
    code, _, err = run(capsys, "verify", str(release))
    assert code == 1 and "MODEL_CARD.md: sha256" in err


def test_convert_official(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(backbones.OFFICIAL_BLOCKS, 50, (1, 1, 1, 1))  # a tiny "ResNet-50" keeps the test fast
    params, state = haiku_tree((1, 1, 1, 1), 1, random_maker(0))
    pickled = tmp_path / "resnet_50_1x_1_pct.pkl"
    pickled.write_bytes(pickle.dumps({"experiment_state": {"online_params": params, "online_state": state}}, protocol=2))
    code, out, _ = run(capsys, "convert-official", str(pickled), "--out", str(tmp_path / "out"))
    summary = json.loads(out)
    assert code == 0 and summary["arch"] == "official_resnet50_w1" and summary["ignored_modules"] == ["projector"]
    assert summary["file"].endswith(f"resnet_50_1x_1_pct-{summary['sha256'][:8]}.pth")
    assert run(capsys, "verify", summary["file"])[0] == 0

    del params["res_net50/~/initial_conv"]
    pickled.write_bytes(pickle.dumps({"experiment_state": {"online_params": params, "online_state": state}}, protocol=2))
    code, _, err = run(capsys, "convert-official", str(pickled), "--out", str(tmp_path / "out2"))
    assert code == 1 and "unsupported layout" in err and not (tmp_path / "out2").exists()


def test_empty_manifest_and_usage(tmp_path, capsys):
    (tmp_path / "m.json").write_text('{"schema_version": 1, "models": []}')
    assert run(capsys, "list", "--manifest", str(tmp_path / "m.json"))[:2] == (0, "the manifest lists no models yet\n")
    assert run(capsys, "list")[0] == 0  # the repository's manifest
    assert run(capsys, "--help")[0] == 0
    code, _, err = run(capsys)
    assert code == 2 and "required" in err
    code, _, err = run(capsys, "verify", "x", "--sha256", "a", "--name", "b")
    assert code == 2 and "not allowed with" in err
