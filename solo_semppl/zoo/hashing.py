"""SHA-256 of files, ``SHA256SUMS`` listings and hash-suffixed file names.

``SHA256SUMS`` uses ``sha256sum``'s format (``<64 hex>  <relative path>`` per line, POSIX
separators), so ``sha256sum -c SHA256SUMS`` checks a release folder too. Release weight files
are named like mmpretrain's: ``<name>-<first 8 hex of the file's sha256>.pth``.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Dict, List, Union

SUMS_FILE = "SHA256SUMS"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SUFFIXED = re.compile(r".+-([0-9a-f]{8})\.pth")
_CHUNK = 1 << 20
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_name(name: object, what: str = "name") -> str:
    """Return ``name`` if it is a safe file-name stem (letters, digits, ``._-``), else raise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{what}: expected letters, digits, '.', '_' or '-' (not starting with a symbol), got {name!r}")
    return name


def sha256_file(path: Union[str, Path]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(value: object, what: str) -> str:
    """Return ``value`` lower-cased if it is 64 hex digits, else raise ValueError."""
    if not isinstance(value, str) or not _HEX64.fullmatch(value.lower()):
        raise ValueError(f"{what}: expected a sha256 of 64 hex digits, got {value!r}")
    return value.lower()


def hash_suffix(path: Union[str, Path]) -> Union[str, None]:
    """The 8 hex digits of a ``<name>-<8 hex>.pth`` file name, or None."""
    match = _SUFFIXED.fullmatch(Path(path).name)
    return match[1] if match else None


def _release_files(folder: Path) -> List[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != SUMS_FILE)


def write_sha256sums(folder: Union[str, Path]) -> Path:
    """Write ``folder/SHA256SUMS`` listing every other file below ``folder``."""
    folder = Path(folder)
    lines = [f"{sha256_file(folder / rel)}  {rel}\n" for rel in _release_files(folder)]
    target = folder / SUMS_FILE
    target.write_text("".join(lines))
    return target


def read_sha256sums(path: Union[str, Path]) -> Dict[str, str]:
    """``{relative path: sha256}`` of a ``SHA256SUMS`` file; malformed lines are a ValueError."""
    sums = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        digest, sep, rel = line.partition("  ")
        if not sep or not rel:
            raise ValueError(f"{path}: line {number} is not '<sha256>  <path>': {line!r}")
        sums[rel] = check_sha256(digest, f"{path} line {number}")
    return sums


def verify_release(folder: Union[str, Path]) -> List[str]:
    """Check a release folder against its ``SHA256SUMS``.

    Every listed file must exist with its hash, no unlisted file may be present, and a
    ``<name>-<8 hex>.pth`` file's suffix must be the start of its hash.

    Returns:
        The verified relative paths. Raises ValueError listing every problem.
    """
    folder = Path(folder)
    if not (folder / SUMS_FILE).is_file():
        raise ValueError(f"path: {folder} has no {SUMS_FILE}")
    sums = read_sha256sums(folder / SUMS_FILE)
    present = _release_files(folder)
    problems = [f"unlisted file {rel}" for rel in present if rel not in sums]
    for rel, digest in sums.items():
        if rel not in present:
            problems.append(f"missing file {rel}")
            continue
        actual = sha256_file(folder / rel)
        if actual != digest:
            problems.append(f"{rel}: sha256 {actual} differs from the listed {digest}")
        elif hash_suffix(rel) not in (None, actual[:8]):
            problems.append(f"{rel}: name suffix {hash_suffix(rel)} is not the start of its sha256 {actual}")
    if problems:
        raise ValueError(f"{folder} failed verification: " + "; ".join(problems))
    return sorted(sums)


def verify_file(path: Union[str, Path], sha256: Union[str, None] = None) -> str:
    """Check one file against ``sha256`` (or, if None, against its ``-<8 hex>.pth`` suffix).

    Returns:
        The file's sha256. Raises ValueError on a mismatch or when nothing to check against.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: no such file {str(path)!r}")
    actual = sha256_file(path)
    if sha256 is not None:
        expected = check_sha256(sha256, "sha256")
        if actual != expected:
            raise ValueError(f"{path}: sha256 {actual} differs from the expected {expected}")
    elif hash_suffix(path) is None:
        raise ValueError(f"sha256: {path.name} has no '-<8 hex>.pth' suffix; give the expected sha256 or a manifest name")
    elif not actual.startswith(hash_suffix(path)):
        raise ValueError(f"{path}: sha256 {actual} does not start with the name's suffix {hash_suffix(path)}")
    return actual
