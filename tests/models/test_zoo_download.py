"""Downloads from a local HTTP server: verified, atomic, retried with backoff, cached."""
import hashlib
import os

import pytest

from solo_semppl.zoo import DownloadError, download
from solo_semppl.zoo import downloader as download_module
from zoo_testing import serving

PAYLOAD = os.urandom(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()
ROUTES = {"/good.pth": ("good", PAYLOAD), "/corrupt.pth": ("corrupt", PAYLOAD),
          "/truncated.pth": ("truncated", PAYLOAD), "/flaky.pth": ("flaky:2", PAYLOAD)}


@pytest.fixture
def server():
    with serving(dict(ROUTES)) as srv:
        yield srv


@pytest.fixture
def sleeps(monkeypatch):
    calls = []
    monkeypatch.setattr(download_module, "_sleep", calls.append)
    return calls


def entry(server, *paths, **extra):
    return {"name": "tiny", "arch": "resnet18", "urls": [server.url(p) for p in paths], "sha256": SHA,
            "size": len(PAYLOAD), **extra}


def files_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_good_file_is_verified_and_then_cached(server, tmp_path, sleeps):
    path = download(entry(server, "/good.pth"), cache_dir=tmp_path, timeout=5)
    assert path == tmp_path / "tiny" / "good.pth" and path.read_bytes() == PAYLOAD
    assert download(entry(server, "/good.pth"), cache_dir=tmp_path, timeout=5) == path
    assert server.counts["/good.pth"] == 1 and sleeps == []  # the second call read the cache


@pytest.mark.parametrize("route,message", [("/corrupt.pth", "sha256"), ("/truncated.pth", "IncompleteRead|truncated")])
def test_bad_files_never_appear_under_the_final_name(server, tmp_path, sleeps, route, message):
    with pytest.raises(DownloadError, match=message):
        download(entry(server, route), cache_dir=tmp_path, retries=2, backoff=0.5, timeout=5)
    assert server.counts[route] == 3 and sleeps == [0.5, 1.0]
    assert files_under(tmp_path) == []  # no final file, no temporary file


@pytest.mark.parametrize("retries,succeeds", [(3, True), (1, False)])
def test_retries_with_exponential_backoff(server, tmp_path, sleeps, retries, succeeds):
    if succeeds:
        assert download(entry(server, "/flaky.pth"), cache_dir=tmp_path, retries=retries, backoff=0.25).read_bytes() == PAYLOAD
        assert sleeps == [0.25, 0.5] and server.counts["/flaky.pth"] == 3
    else:
        with pytest.raises(DownloadError, match="503"):
            download(entry(server, "/flaky.pth"), cache_dir=tmp_path, retries=retries, backoff=0.25)
        assert sleeps == [0.25] and server.counts["/flaky.pth"] == 2


def test_next_url_after_a_bad_one(server, tmp_path, sleeps):
    path = download(entry(server, "/corrupt.pth", "/good.pth"), cache_dir=tmp_path, retries=0)
    assert path.name == "corrupt.pth" and path.read_bytes() == PAYLOAD  # named after the first URL
    assert server.counts == {**server.counts, "/corrupt.pth": 1, "/good.pth": 1}


@pytest.mark.parametrize("route,succeeds", [("/good.pth", True), ("/corrupt.pth", False)])
def test_a_damaged_cached_copy_is_replaced_or_removed(server, tmp_path, sleeps, route, succeeds):
    stale = tmp_path / "tiny" / route[1:]
    stale.parent.mkdir(parents=True)
    stale.write_bytes(PAYLOAD[:-1] + b"x")
    if succeeds:
        assert download(entry(server, route), cache_dir=tmp_path, retries=0).read_bytes() == PAYLOAD
    else:
        with pytest.raises(DownloadError):
            download(entry(server, route), cache_dir=tmp_path, retries=0)
        assert files_under(tmp_path) == []


def test_unreachable_server_is_a_download_error(tmp_path, sleeps):
    with serving({}) as srv:
        url = srv.url("/gone.pth")
    bad = {"name": "tiny", "arch": "resnet18", "urls": [url], "sha256": SHA, "size": 1}
    with pytest.raises(DownloadError, match="gone.pth attempt 2"):
        download(bad, cache_dir=tmp_path, retries=1, backoff=0, timeout=2)


@pytest.mark.parametrize("change,message", [
    ({"sha256": None}, "'sha256' is missing"), ({"sha256": "abc"}, "64 hex"), ({"urls": []}, "non-empty list"),
    ({"urls": ["ftp://x/y.pth"]}, "URLs"), ({"size": -1}, "size"), ({"arch": "vgg16"}, "unsupported backbone"),
    ({"stem": "tiny"}, "stem"), ({"name": "../x"}, "name"),
])
def test_bad_entries_are_refused_before_any_request(server, tmp_path, change, message):
    bad = {k: v for k, v in {**entry(server, "/good.pth"), **change}.items() if v is not None}
    with pytest.raises(ValueError, match=message):
        download(bad, cache_dir=tmp_path)
    assert server.counts["/good.pth"] == 0


def test_unknown_names_list_the_known_ones(server, tmp_path):
    manifest = {"schema_version": 1, "models": [entry(server, "/good.pth"), {**entry(server, "/good.pth"), "name": "other"}]}
    with pytest.raises(ValueError, match="unknown model 'nope'; known models: tiny, other"):
        download("nope", cache_dir=tmp_path, manifest=manifest)
    with pytest.raises(ValueError, match="the manifest is empty"):
        download("nope", cache_dir=tmp_path, manifest={"models": []})
    assert download("other", cache_dir=tmp_path, manifest=manifest).read_bytes() == PAYLOAD


def test_bad_retry_settings(tmp_path):
    with pytest.raises(ValueError, match="retries"):
        download({}, cache_dir=tmp_path, retries=-1)
