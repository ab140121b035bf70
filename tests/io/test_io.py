"""The io layer: one cache root for the digits images and the zoo downloads."""
from solo_semppl.data.digits import materialise_digits
from solo_semppl.io.cache import cache_root
from solo_semppl.zoo.downloader import cache_dir_path


def test_one_cache_root_and_one_environment_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("SOLO_SEMPPL_CACHE", raising=False)
    assert cache_root().parts[-2:] == (".cache", "solo_semppl") and cache_dir_path() == cache_root() / "zoo"
    monkeypatch.setenv("SOLO_SEMPPL_CACHE", str(tmp_path))
    assert cache_dir_path() == tmp_path / "zoo" and cache_dir_path(tmp_path / "x") == tmp_path / "x"
    assert materialise_digits().parent == tmp_path
