"""The manifest: the repository's file, entry checks, publishing a release."""
import hashlib
import json
from pathlib import Path

import pytest

from solo_semppl.zoo import find_entry, publish, read_manifest
from solo_semppl.zoo.hashing import write_sha256sums
from solo_semppl.zoo.manifest import MANIFEST_ENV, REPO_MANIFEST

from conftest import REPO


FIELDS = ("name", "arch", "stem", "tf_same_padding", "urls", "sha256", "size", "metrics", "card")


def test_repository_manifest_is_valid_and_its_schema_is_described():
    assert REPO_MANIFEST.resolve() == REPO / "zoo" / "manifest.json"  # package link to zoo/
    assert json.loads(REPO_MANIFEST.read_text())["schema_version"] == 1
    entries = read_manifest()  # the default manifest; every entry passes the checks
    local_cards = [e["card"] for e in entries if "card" in e and not e["card"].startswith(("http://", "https://"))]
    assert all((REPO / "zoo" / card).is_file() for card in local_cards)
    readme = (REPO / "zoo" / "README.md").read_text()
    assert all(f"| `{field}` |" in readme for field in FIELDS)


def fake_release(folder: Path, name="tiny-r18"):
    """A release folder as export_release writes it (small stand-in files)."""
    folder.mkdir(parents=True)
    digest = hashlib.sha256(b"weights").hexdigest()
    (folder / f"{name}-{digest[:8]}.pth").write_bytes(b"weights")
    (folder / "MODEL_CARD.md").write_text(f"# {name}\n")
    entry = {"name": name, "arch": "resnet18", "stem": "cifar", "tf_same_padding": False, "urls": [],
             "sha256": digest, "size": 7, "metrics": {"linear": {"top1": 50.0}}, "card": "MODEL_CARD.md"}
    (folder / "manifest_entry.json").write_text(json.dumps(entry))
    write_sha256sums(folder)
    return folder


def test_publish_adds_the_entry_and_card(tmp_path):
    manifest = tmp_path / "zoo" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text(json.dumps({"schema_version": 1, "models": []}))
    entry = publish(fake_release(tmp_path / "rel"), ["https://example.org/tiny.pth"], manifest=manifest)
    assert entry["urls"] == ["https://example.org/tiny.pth"] and entry["card"] == "cards/tiny-r18.md"
    assert (manifest.parent / "cards" / "tiny-r18.md").read_text() == "# tiny-r18\n"
    assert read_manifest(manifest) == [entry]
    assert find_entry("tiny-r18", manifest)["metrics"] == {"linear": {"top1": 50.0}}
    before = manifest.read_text()
    with pytest.raises(ValueError, match="already in"):
        publish(tmp_path / "rel", ["https://example.org/tiny.pth"], manifest=manifest)
    assert manifest.read_text() == before


@pytest.mark.parametrize("problem,message", [
    ("tampered", "failed verification"), ("no urls", "urls"), ("entry mismatch", "does not describe"),
])
def test_publish_refuses_bad_releases_and_keeps_the_manifest(tmp_path, problem, message):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"schema_version": 1, "models": []}))
    release = fake_release(tmp_path / "rel")
    if problem == "tampered":
        (release / "MODEL_CARD.md").write_text("changed")
    if problem == "entry mismatch":
        entry = json.loads((release / "manifest_entry.json").read_text())
        (release / "manifest_entry.json").write_text(json.dumps({**entry, "size": 8}))
        write_sha256sums(release)
    with pytest.raises(ValueError, match=message):
        publish(release, [] if problem == "no urls" else ["https://example.org/x.pth"], manifest=manifest)
    assert json.loads(manifest.read_text())["models"] == [] and not (tmp_path / "cards").exists()


def test_environment_variable_selects_the_manifest(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    entry = {"name": "a", "arch": "official_resnet200_w2", "urls": ["file:///x/a.pth"], "sha256": "B" * 64, "size": 3}
    path.write_text(json.dumps({"schema_version": 1, "models": [entry]}))
    monkeypatch.setenv(MANIFEST_ENV, str(path))
    got = find_entry("a")
    assert (got["sha256"], got["stem"], got["tf_same_padding"], got["metrics"]) == ("b" * 64, "imagenet", False, {})


@pytest.mark.parametrize("content,message", [
    ("{", "not valid JSON"), ('{"models": {}}', "'models' list"), ('[]', "'models' list"),
    ('{"models": [{"name": "a", "arch": "resnet18", "urls": ["https://x/a"], "sha256": "' + "0" * 64 + '", "size": 1},'
     ' {"name": "a", "arch": "resnet18", "urls": ["https://x/a"], "sha256": "' + "0" * 64 + '", "size": 1}]}', "more than once"),
])
def test_malformed_manifests(tmp_path, content, message):
    path = tmp_path / "m.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_manifest(path)


def test_missing_manifest_file(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        read_manifest(tmp_path / "none.json")
