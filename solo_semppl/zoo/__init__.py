"""The SemPPL model zoo: export, publish, download, verify, load and convert checkpoints.

Public API:

- ``load(name, cache_dir=None, manifest=None, tf_same_padding=None, **download_options)``:
  a torchvision backbone with the weights of a manifest entry.
- ``save_solo_checkpoint(name, out, ...)``: the model as a ``.ckpt`` for upstream ``main_linear.py``.
- ``load_backbone_state(path, arch, stem="imagenet", tf_same_padding=False, trusted=False)``:
  a backbone from a local release file or solo-learn checkpoint.
- ``download(name_or_entry, cache_dir=None, manifest=None, retries=3, backoff=1.0, timeout=60.0)``.
- ``export_release(checkpoint, out_dir, name=None, results=None, split_file=None, ...)`` and
  ``publish(release_dir, urls, manifest=None)``.
- ``verify_release(folder)``, ``verify_file(path, sha256=None)``.
- ``convert_official_file(path, out_dir, ...)``, ``convert_official_tree(params, state, blocks=None)``.
- ``build_backbone(arch, stem="imagenet", device=None)``, ``official_resnet(depth, width)``,
  ``use_tf_same_padding(model)``.
- ``cli.main(argv)``: the ``solo-semppl zoo`` command.
"""
from .backbones import build_backbone, official_resnet
from .convert_official import convert_official_file, convert_official_tree
from .downloader import DownloadError, download
from .export import export_release
from .hashing import verify_file, verify_release
from .loader import load, save_solo_checkpoint
from .manifest import find_entry, publish, read_manifest
from .same_padding import use_tf_same_padding
from .state import load_backbone_state

__all__ = [
    "DownloadError", "build_backbone", "convert_official_file", "convert_official_tree", "download",
    "export_release", "find_entry", "load", "load_backbone_state", "official_resnet", "publish",
    "read_manifest", "save_solo_checkpoint", "use_tf_same_padding", "verify_file", "verify_release",
]
