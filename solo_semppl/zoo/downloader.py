"""Download zoo files with urllib: verified, atomic, retried, cached.

A file is fetched to a hidden temporary file beside its final path, its size and sha256 are
checked, and only then is it moved to the final name with ``os.replace``: a partial or
corrupted download never appears under the final name. Each URL of the entry is tried up to
``retries + 1`` times (waiting ``backoff * 2**k`` seconds after the k-th failure), then the
next URL. A file already in the cache with the right sha256 is not downloaded again.
"""
from __future__ import annotations

import hashlib
import os
import time
import urllib.request
from http.client import HTTPException
from pathlib import Path
from typing import Mapping, Union
from urllib.parse import urlparse

from solo_semppl.io.atomic import temp_file
from solo_semppl.io.cache import cache_root

from .hashing import sha256_file
from .manifest import ManifestLike, find_entry

_CHUNK = 1 << 20
_sleep = time.sleep  # replaced in tests to observe the backoff


class DownloadError(RuntimeError):
    """Every URL of an entry failed (the message lists each attempt's error)."""


def cache_dir_path(cache_dir: Union[None, str, Path] = None) -> Path:
    """``cache_dir``, else ``zoo/`` in the cache root (``io.cache``: ``$SOLO_SEMPPL_CACHE`` or
    ``~/.cache/solo_semppl``)."""
    return Path(cache_dir) if cache_dir else cache_root() / "zoo"


def cached_path(entry: Mapping, cache_dir: Union[None, str, Path] = None) -> Path:
    """Where ``entry``'s file lives in the cache: ``<cache>/<name>/<file name of the first URL>``."""
    file_name = Path(urlparse(entry["urls"][0]).path).name or f"{entry['name']}.pth"
    return cache_dir_path(cache_dir) / entry["name"] / file_name


def _fetch(url: str, target: Path, size: int, sha256: str, timeout: float) -> None:
    """Write ``url``'s body to ``target``; raise OSError/HTTPException/ValueError on any fault."""
    digest, received = hashlib.sha256(), 0
    with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
            received += len(chunk)
            if received > size:
                raise ValueError(f"more than the expected {size} bytes")
    if received != size:
        raise ValueError(f"received {received} bytes, expected {size} (truncated?)")
    if digest.hexdigest() != sha256:
        raise ValueError(f"sha256 {digest.hexdigest()} differs from the expected {sha256} (corrupted?)")


def download(
    name_or_entry: Union[str, Mapping],
    cache_dir: Union[None, str, Path] = None,
    manifest: ManifestLike = None,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60.0,
) -> Path:
    """Return the verified local path of a zoo file, downloading it if needed.

    Args:
        name_or_entry: a model name in the manifest, or a manifest entry (dict).
        cache_dir: cache folder (see ``cache_dir_path``).
        manifest: manifest path or dict (see ``manifest``); default the repository's.
        retries: extra attempts per URL after a failure (>= 0).
        backoff: seconds before the first retry, doubling after each (>= 0).
        timeout: socket timeout in seconds for each request.

    Raises:
        ValueError: unknown name or bad entry (e.g. no sha256).
        DownloadError: no URL gave a file of the right size and sha256; nothing is left
            under the final name nor as a temporary file.
    """
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries: expected an integer >= 0, got {retries!r}")
    if backoff < 0 or timeout <= 0:
        raise ValueError(f"backoff/timeout: expected backoff >= 0 and timeout > 0, got {backoff}, {timeout}")
    entry = find_entry(name_or_entry, manifest)
    target = cached_path(entry, cache_dir)
    if target.is_file():
        if target.stat().st_size == entry["size"] and sha256_file(target) == entry["sha256"]:
            return target
        target.unlink()  # a stale or damaged copy never stays under the final name
    errors = []
    with temp_file(target.parent, target.name) as temp:
        for url in entry["urls"]:
            for attempt in range(retries + 1):
                try:
                    _fetch(url, temp, entry["size"], entry["sha256"], timeout)
                    os.replace(temp, target)
                    return target
                except (OSError, HTTPException, ValueError) as err:  # URLError is an OSError
                    errors.append(f"{url} attempt {attempt + 1}: {type(err).__name__}: {err}")
                if attempt < retries:
                    _sleep(backoff * 2**attempt)
    raise DownloadError(f"could not download {entry['name']!r} into {target}:\n  " + "\n  ".join(errors))
