"""The one cache root: ``$SOLO_SEMPPL_CACHE``, else ``~/.cache/solo_semppl``. The embedded digits
images go in ``<root>/digits-*``, zoo downloads in ``<root>/zoo``."""
import os
from pathlib import Path

CACHE_ENV = "SOLO_SEMPPL_CACHE"


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "solo_semppl")
