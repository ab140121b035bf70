"""Read the official SemPPL pickles (written with ``dill``) without dill, jax or haiku.

The official checkpointer dumps a dict of NumPy arrays with ``dill`` (protocol 2). Such a
file is a plain pickle except that dill rebuilds each ``ndarray`` through
``dill._dill._create_array``; ``_create_array`` below does the same (call the array
constructor, then ``__setstate__``). By default only NumPy arrays and scalars, plain
containers and that function may be unpickled, so a downloaded file cannot run code; any
other class is a ValueError naming it. ``trusted=True`` uses the unrestricted ``pickle``
(for files you trust whose containers need installed packages, e.g. haiku or jax).
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Union

import numpy as np

try:  # NumPy 2 moved the module; both spellings appear in pickles
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - NumPy 1
    from numpy.core import multiarray as _multiarray


def _create_array(factory, args, state, npdict=None):
    """dill's array rebuilder: ``factory(*args)``, then ``__setstate__(state)``."""
    array = factory(*args)
    array.__setstate__(state)
    if npdict is not None:
        array.__dict__.update(npdict)
    return array


_ALLOWED = {
    ("collections", "OrderedDict"): __import__("collections").OrderedDict,
    ("_codecs", "encode"): __import__("codecs").encode,  # protocol 2 writes bytes this way
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("dill._dill", "_create_array"): _create_array,
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_module, "_reconstruct")] = _multiarray._reconstruct
    _ALLOWED[(_module, "scalar")] = _multiarray.scalar


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise ValueError(
            f"the pickle needs the class or function {module}.{name}, which the official-checkpoint "
            "reader does not load (only NumPy arrays, plain containers and dill's array helper); "
            "if you trust the file and have that package installed, use trusted=True (CLI: --trusted)"
        )


def load_pickle(path: Union[str, Path], trusted: bool = False):
    """Unpickle ``path`` (restricted unless ``trusted``; see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: no such file {str(path)!r}")
    data = path.read_bytes()
    try:
        if trusted:
            return pickle.loads(data)
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ImportError, AttributeError) as err:
        raise ValueError(f"{path}: cannot be unpickled ({type(err).__name__}: {err})") from err
