"""Release export from solo-learn checkpoints, verification, and loading local backbone files."""
import argparse
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from solo_semppl.zoo import export_release, load_backbone_state, verify_file, verify_release
from solo_semppl.zoo import export as export_module
from zoo_testing import make_solo_checkpoint, no_onednn, solo_backbone_state  # noqa: F401

RESULTS = {"results": [
    {"protocol": "linear", "dataset": "cifar10 test", "command": "solo-semppl linear --ckpt x.ckpt", "metrics": {"top1": 61.25, "top5": 95.5}},
    {"protocol": "knn", "command": "solo-semppl knn --k 20", "metrics": {"top1": 58.0}},
]}


@pytest.fixture(scope="module")
def solo_run(tmp_path_factory):
    """A solo-learn style run folder (checkpoint + args.json), a results file and a split file."""
    folder = tmp_path_factory.mktemp("run")
    ckpt = make_solo_checkpoint(folder)
    (folder / "results.json").write_text(json.dumps(RESULTS))
    (folder / "split.txt").write_text("0\n5\n9\n")
    return ckpt


@pytest.fixture(scope="module")
def release(solo_run, tmp_path_factory):
    """The release folder of ``solo_run`` with results and split file (do not modify it)."""
    run = solo_run.parent
    return export_release(solo_run, tmp_path_factory.mktemp("releases"), results=run / "results.json",
                          split_file=run / "split.txt")


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_release_folder_contents(solo_run, release):
    run, folder = solo_run.parent, release
    assert folder.name == "semppl-r18-test" and not [p for p in folder.parent.iterdir() if p != folder]
    weights = [p for p in folder.glob("*.pth")]
    assert len(weights) == 1 and weights[0].name == f"semppl-r18-test-{sha(weights[0])[:8]}.pth"
    state = torch.load(weights[0], weights_only=True)
    expected = solo_backbone_state()
    assert state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in expected)
    assert sha(folder / "checkpoint" / solo_run.name) == sha(solo_run)
    assert (folder / "checkpoint" / "args.json").read_text() == (run / "args.json").read_text()
    sums = dict(line.split("  ")[::-1] for line in (folder / "SHA256SUMS").read_text().splitlines())
    listed = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    assert sorted(sums) == listed and all(sums[rel] == sha(folder / rel) for rel in listed)
    assert verify_release(folder) == listed
    entry = json.loads((folder / "manifest_entry.json").read_text())
    assert entry["sha256"] == sha(weights[0]) and entry["size"] == weights[0].stat().st_size
    assert entry["metrics"] == {"linear (cifar10 test)": {"top1": 61.25, "top5": 95.5}, "knn": {"top1": 58.0}}
    assert (entry["arch"], entry["stem"]) == ("resnet18", "cifar")


def test_model_card_records_what_was_given(solo_run, release, tmp_path):
    run, card = solo_run.parent, (release / "MODEL_CARD.md").read_text()
    for text in ("| method | semppl |", "resnet18 (cifar stem", "| data | cifar10 |", "| epochs | 4 |",
                 "64 per device; devices 1 (not recorded), 1 node(s)", f"`split.txt` (sha256 `{sha(run / 'split.txt')}`)",
                 "| top1 | 61.25 |", "| top5 | 95.5 |", "solo-semppl linear --ckpt x.ckpt", "solo-semppl knn --k 20",
                 '"num_semantic_positives": 3'):
        assert text in card, text
    bare = (export_release(solo_run, tmp_path, name="bare") / "MODEL_CARD.md").read_text()
    assert "No evaluation results were given" in bare and "no split file given" in bare and "61.25" not in bare


def test_loaded_backbone_from_release_and_from_checkpoint(solo_run, release):
    from_release = load_backbone_state(next(release.glob("*.pth")), "resnet18", stem="cifar").eval()
    from_ckpt = load_backbone_state(solo_run, "resnet18", stem="cifar").eval()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(from_release(x), from_ckpt(x))
    expected = solo_backbone_state()
    assert all(torch.equal(from_release.state_dict()[k], expected[k]) for k in expected)


@pytest.mark.parametrize("arch,stem,message", [
    ("resnet18", "imagenet", r"shape mismatch.*conv1.weight"),
    ("resnet34", "cifar", r"missing key\(s\): layer1.2"),
])
def test_load_backbone_state_rejects_a_wrong_model(solo_run, arch, stem, message):
    with pytest.raises(ValueError, match=message):
        load_backbone_state(solo_run, arch, stem=stem)


def test_unexpected_keys_are_named(tmp_path):
    state = {**solo_backbone_state(), "head.weight": torch.zeros(2)}
    torch.save(state, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match=r"1 unexpected key\(s\): head.weight"):
        load_backbone_state(tmp_path / "extra.pth", "resnet18", stem="cifar")


def bad_input(tmp_path, solo_run, kind):
    """Return export_release kwargs for one kind of bad input (files made in tmp_path)."""
    run = tmp_path / "bad"
    run.mkdir()
    args = json.loads((solo_run.parent / "args.json").read_text())
    (run / "args.json").write_text(json.dumps(args))
    ckpt = run / "x.ckpt"
    if kind == "no args.json":
        (run / "args.json").unlink()
        torch.save({"state_dict": {"backbone.a": torch.zeros(1)}}, ckpt)
    elif kind == "no state_dict":
        torch.save({"model": {"backbone.a": torch.zeros(1)}}, ckpt)
    elif kind == "no backbone keys":
        torch.save({"state_dict": {"encoder.conv1.weight": torch.zeros(1)}}, ckpt)
    elif kind == "wrong backbone":
        args["backbone"]["name"] = "resnet50"
        (run / "args.json").write_text(json.dumps(args))
        ckpt = solo_run
        return {"checkpoint": ckpt, "args_path": run / "args.json"}
    elif kind == "unsupported arch":
        args["backbone"]["name"] = "vit_small"
        (run / "args.json").write_text(json.dumps(args))
        return {"checkpoint": solo_run, "args_path": run / "args.json"}
    elif kind == "bad results":
        (run / "results.json").write_text(json.dumps([{"protocol": "linear", "metrics": {"top1": 1.0}}]))
        return {"checkpoint": solo_run, "results": run / "results.json"}
    elif kind == "garbage file":
        ckpt.write_bytes(b"\x00not a checkpoint" * 10)
    elif kind == "untrusted objects":
        torch.save({"state_dict": solo_backbone_state(), "cfg": argparse.Namespace(a=1)}, ckpt)
    return {"checkpoint": ckpt}


@pytest.mark.parametrize("kind,message", [
    ("no args.json", "args.json.*not a solo-learn run folder"), ("no state_dict", "'state_dict'"), ("no backbone keys", "'backbone.\\*'"),
    ("wrong backbone", "does not fit the model"), ("unsupported arch", "unsupported backbone"),
    ("bad results", "needs a non-empty string 'command'"), ("untrusted objects", "trusted=True"),
    ("garbage file", "not a file torch.load can read"),
])
def test_bad_inputs_write_nothing(solo_run, tmp_path, kind, message):
    kwargs = bad_input(tmp_path, solo_run, kind)
    out = tmp_path / "releases"
    with pytest.raises(ValueError, match=message):
        export_release(out_dir=out, **kwargs)
    assert not out.exists() or not any(out.iterdir())


def test_trusted_switch_loads_checkpoints_with_other_objects(solo_run, tmp_path):
    state = {f"backbone.{k}": v for k, v in solo_backbone_state().items()}
    torch.save({"state_dict": state, "cfg": argparse.Namespace(a=1)}, tmp_path / "x.ckpt")
    (tmp_path / "args.json").write_text((solo_run.parent / "args.json").read_text())
    assert export_release(tmp_path / "x.ckpt", tmp_path / "out", trusted=True).is_dir()


def test_failure_midway_and_existing_release_leave_no_partial_folder(solo_run, tmp_path, monkeypatch):
    def broken_card(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export_module, "render_card", broken_card)
    with pytest.raises(RuntimeError, match="disk full"):
        export_release(solo_run, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []  # the temporary folder is gone too
    monkeypatch.undo()
    folder = export_release(solo_run, tmp_path / "out")
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(ValueError, match="already exists"):
        export_release(solo_run, tmp_path / "out")
    assert sorted(p.name for p in folder.iterdir()) == before


def test_verify_detects_tampering(release, tmp_path):
    folder = Path(shutil.copytree(release, tmp_path / "copy"))
    weights = next(folder.glob("*.pth"))
    assert verify_file(weights) == sha(weights)  # checked against the name's hash suffix
    (folder / "MODEL_CARD.md").write_text("edited")
    (folder / "notes.txt").write_text("new")
    with pytest.raises(ValueError) as err:
        verify_release(folder)
    assert "MODEL_CARD.md: sha256" in str(err.value) and "unlisted file notes.txt" in str(err.value)
    with pytest.raises(ValueError, match="differs"):
        verify_file(weights, "0" * 64)
    renamed = weights.with_name("semppl-r18-test-00000000.pth")
    weights.rename(renamed)
    with pytest.raises(ValueError, match="suffix"):
        verify_file(renamed)
