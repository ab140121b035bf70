"""The zoo manifest (``zoo/manifest.json``): which models exist and where to get them.

Schema (described for users in ``zoo/README.md``)::

    {"schema_version": 1,
     "models": [{"name": "semppl-resnet18-cifar10-1pct",  # required, unique, [A-Za-z0-9._-]
                 "arch": "resnet18",                      # required, see backbones
                 "stem": "cifar",                         # optional, "imagenet" (default) / "cifar"
                 "tf_same_padding": false,                # optional, default false
                 "urls": ["https://...", "weights/x.pth"],  # required, non-empty, tried in order
                 "sha256": "<64 hex>",                    # required, of the backbone .pth
                 "size": 44787339,                        # required, bytes
                 "metrics": {"linear (cifar10)": {"top1": 91.2}},  # optional
                 "card": "cards/<name>.md"}]}             # optional, relative to the manifest or a URL

A URL without a scheme is a path relative to the manifest's folder (small files kept beside
the manifest, such as the demo backbones in ``zoo/weights/``): it is read as a ``file://`` URL
and needs a manifest file, not a dict.

The manifest used: the ``manifest`` argument (a path or an already-loaded dict), else the
file named by ``$SOLO_SEMPPL_MANIFEST``, else ``zoo/manifest.json`` of this repository (shipped in
the package as ``solo_semppl/zoo/registry``, a link to ``zoo/``).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import List, Mapping, Sequence, Union

from solo_semppl.io.atomic import temp_file
from .backbones import STEMS, check_arch
from .export import CARD_FILE, ENTRY_FILE
from .hashing import check_name, check_sha256, sha256_file, verify_release
from solo_semppl.io.jsonfiles import read_json, write_json_atomic

SCHEMA_VERSION = 1
MANIFEST_ENV = "SOLO_SEMPPL_MANIFEST"
REPO_MANIFEST = Path(__file__).parent / "registry" / "manifest.json"
URL_SCHEMES = ("https://", "http://", "file://")

ManifestLike = Union[None, str, Path, Mapping]


def manifest_path(manifest: Union[None, str, Path] = None) -> Path:
    """The manifest file: ``manifest``, else ``$SOLO_SEMPPL_MANIFEST``, else the repository's."""
    return Path(manifest or os.environ.get(MANIFEST_ENV) or REPO_MANIFEST)


def is_relative_url(url: str) -> bool:
    """A path below the manifest's folder: no scheme, not absolute, no ``..``."""
    parts = Path(url).parts
    return bool(parts) and "://" not in url and not Path(url).is_absolute() and ".." not in parts


def resolve_urls(entry: dict, folder) -> dict:
    """``entry`` with its relative URLs turned into ``file://`` URLs under ``folder``."""
    if not any(is_relative_url(u) for u in entry["urls"]):
        return entry
    if folder is None:
        raise ValueError(f"manifest entry {entry['name']!r}: relative URLs {entry['urls']} need a manifest file to resolve against")
    return {**entry, "urls": [(Path(folder) / u).resolve().as_uri() if is_relative_url(u) else u for u in entry["urls"]]}


def check_entry(entry: object) -> dict:
    """A manifest entry with its defaults filled in, or ValueError naming the bad field."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"manifest entry: expected an object, got {type(entry).__name__}")
    name = check_name(entry.get("name"), "manifest entry 'name'")
    where = f"manifest entry {name!r}"
    for key in ("arch", "urls", "sha256", "size"):
        if key not in entry:
            raise ValueError(f"{where}: field '{key}' is missing (required: name, arch, urls, sha256, size)")
    urls = entry["urls"]
    if not isinstance(urls, list) or not urls or not all(
        isinstance(u, str) and (u.startswith(URL_SCHEMES) or is_relative_url(u)) for u in urls
    ):
        raise ValueError(f"{where}: 'urls' must be a non-empty list of {'/'.join(URL_SCHEMES)} URLs or paths "
                         f"relative to the manifest, got {urls!r}")
    size = entry["size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"{where}: 'size' must be a non-negative integer (bytes), got {size!r}")
    stem = entry.get("stem", "imagenet")
    if stem not in STEMS:
        raise ValueError(f"{where}: 'stem' must be one of {STEMS}, got {stem!r}")
    if not isinstance(entry.get("tf_same_padding", False), bool):
        raise ValueError(f"{where}: 'tf_same_padding' must be true or false")
    if not isinstance(entry.get("metrics", {}), Mapping):
        raise ValueError(f"{where}: 'metrics' must be an object")
    try:
        check_arch(entry["arch"])
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from err
    return {**entry, "name": name, "stem": stem, "tf_same_padding": entry.get("tf_same_padding", False),
            "sha256": check_sha256(entry["sha256"], f"{where} 'sha256'"), "metrics": dict(entry.get("metrics", {}))}


def read_manifest(manifest: ManifestLike = None) -> List[dict]:
    """The checked entries of a manifest (path, loaded dict or None for the default)."""
    if isinstance(manifest, Mapping):
        data, where, folder = manifest, "manifest", None
    else:
        path = manifest_path(manifest)
        data, where = read_json(path, "manifest", f" (set {MANIFEST_ENV} or pass manifest=)"), str(path)
        folder = path.parent
    if not isinstance(data, Mapping) or not isinstance(data.get("models"), list):
        raise ValueError(f"manifest: {where} must be an object with a 'models' list")
    entries = [resolve_urls(check_entry(entry), folder) for entry in data["models"]]
    names = [entry["name"] for entry in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"manifest: {where} lists these names more than once: {', '.join(duplicates)}")
    return entries


def find_entry(name_or_entry: Union[str, Mapping], manifest: ManifestLike = None) -> dict:
    """The checked entry of ``name_or_entry`` (a name in the manifest, or an entry itself)."""
    if isinstance(name_or_entry, Mapping):
        return resolve_urls(check_entry(name_or_entry), None)
    entries = read_manifest(manifest)
    for entry in entries:
        if entry["name"] == name_or_entry:
            return entry
    known = ", ".join(entry["name"] for entry in entries) or "none: the manifest is empty"
    raise ValueError(f"name: unknown model {name_or_entry!r}; known models: {known}")


def publish(release_dir: Union[str, Path], urls: Sequence[str], manifest: Union[None, str, Path] = None) -> dict:
    """Add a verified release (from ``export_release``) to a manifest file.

    The release must pass ``verify_release`` and its entry must match its ``.pth`` (sha256,
    size). Copies the release's model card to ``<manifest folder>/cards/<name>.md`` and appends the
    release's ``manifest_entry.json`` with ``urls`` filled in; a relative URL gets a copy of the
    ``.pth`` at that path under the manifest's folder. The manifest is rewritten atomically; an
    existing name is refused.

    Returns:
        The new entry.
    """
    release_dir = Path(release_dir)
    verify_release(release_dir)
    entry = read_json(release_dir / ENTRY_FILE, "release_dir")
    if not isinstance(entry, Mapping):
        raise ValueError(f"release_dir: {ENTRY_FILE} must hold an object")
    path = manifest_path(manifest)
    data = read_json(path, "manifest") if path.is_file() else {"schema_version": SCHEMA_VERSION, "models": []}
    entries = read_manifest(path) if path.is_file() else []
    entry = check_entry({**entry, "urls": list(urls), "card": f"cards/{entry.get('name')}.md"})
    weights = release_dir / f"{entry['name']}-{entry['sha256'][:8]}.pth"
    if not weights.is_file() or weights.stat().st_size != entry["size"] or sha256_file(weights) != entry["sha256"]:
        raise ValueError(f"release_dir: {ENTRY_FILE} does not describe {weights.name} (sha256 and size must match)")
    if entry["name"] in {e["name"] for e in entries}:
        raise ValueError(f"name: {entry['name']!r} is already in {path}")
    copies = [(release_dir / CARD_FILE, path.parent / entry["card"])]
    copies += [(weights, path.parent / url) for url in entry["urls"] if is_relative_url(url)]
    for source, target in copies:
        with temp_file(target.parent, target.name) as temp:
            shutil.copyfile(source, temp)
            os.replace(temp, target)
    write_json_atomic(path, {**data, "models": list(data["models"]) + [entry]})
    return entry
