"""Export a solo-learn checkpoint as a zoo release folder.

Release folder ``<out_dir>/<name>/`` (written atomically: a temporary folder renamed at the end;
an existing folder is never overwritten)::

    <name>-<8 hex>.pth        backbone-only torchvision state dict (keys without "backbone.")
    checkpoint/<ckpt file>    the full solo-learn checkpoint, unchanged
    checkpoint/args.json      its args.json, unchanged
    MODEL_CARD.md             method, backbone, data, split file + sha256, epochs, batch,
                              evaluation results with their commands (from the user's JSON)
    manifest_entry.json       the entry for zoo/manifest.json (urls empty until published)
    SHA256SUMS                sha256 of every other file (sha256sum -c format)
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Mapping, Optional, Tuple, Union

from solo_semppl.io.atomic import atomic_dir

from .saving import save_hashed
from .backbones import arch_of, build_backbone
from .card import lookup, metrics_by_protocol, read_results, render_card
from .hashing import check_name, sha256_file, write_sha256sums
from solo_semppl.io.jsonfiles import read_json
from .state import backbone_state_from_solo, check_state_keys, read_torch_file

CIFAR_DATASETS = ("cifar10", "cifar100")  # solo-learn gives these the 3x3 CIFAR stem
CARD_FILE = "MODEL_CARD.md"
ENTRY_FILE = "manifest_entry.json"

PathLike = Union[str, Path]


def read_solo_args(checkpoint: Path, args_path: Optional[PathLike]) -> Tuple[dict, Path]:
    """(content, path) of the ``args.json`` beside ``checkpoint`` (or at ``args_path``).

    Checked for the string keys the release needs: ``method``, ``backbone.name``, ``data.dataset``.
    """
    path = Path(args_path) if args_path is not None else checkpoint.parent / "args.json"
    args = read_json(path, "checkpoint", " (not a solo-learn run folder: solo-learn writes args.json beside its checkpoints)")
    for key in ("method", "backbone.name", "data.dataset"):
        if not isinstance(args, Mapping) or not isinstance(lookup(args, key), str):
            raise ValueError(f"args: {path} has no string '{key}' (solo-learn's args.json records it)")
    return args, path


def export_release(
    checkpoint: PathLike,
    out_dir: PathLike,
    name: Optional[str] = None,
    results: Optional[PathLike] = None,
    split_file: Optional[PathLike] = None,
    args_path: Optional[PathLike] = None,
    trusted: bool = False,
) -> Path:
    """Write the release folder of a solo-learn checkpoint (layout in the module docstring).

    Args:
        checkpoint: solo-learn checkpoint (``.ckpt``) whose ``state_dict`` has ``backbone.*``.
        out_dir: parent folder of the release folder (created if needed).
        name: release name; default ``args.json``'s ``name``.
        results: results JSON (see ``card``); without it the card says none were given.
        split_file: the labelled-split file used for pretraining (named and hashed in the card).
        args_path: ``args.json`` if not beside the checkpoint.
        trusted: allow arbitrary objects in the checkpoint (see ``state.read_torch_file``).

    Returns:
        The release folder. Every input is checked before anything is written.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise ValueError(f"checkpoint: no such file {str(checkpoint)!r}")
    args, args_file = read_solo_args(checkpoint, args_path)
    name = check_name(name if name is not None else lookup(args, "name"), "name (or args.json 'name')")
    arch = arch_of(args["backbone"]["name"], args["backbone"].get("kwargs"))
    stem = "cifar" if args["data"]["dataset"] in CIFAR_DATASETS else "imagenet"
    state = backbone_state_from_solo(read_torch_file(checkpoint, trusted=trusted), checkpoint.name)
    check_state_keys(build_backbone(arch, stem, device="meta").state_dict(), state,
                     f"{checkpoint.name} backbone (arch {arch}, stem {stem})")
    checked_results = read_results(results) if results is not None else []
    split = None
    if split_file is not None:
        if not Path(split_file).is_file():
            raise ValueError(f"split_file: no such file {str(split_file)!r}")
        split = {"file": Path(split_file).name, "sha256": sha256_file(split_file)}

    with atomic_dir(Path(out_dir) / name) as folder:
        backbone, sha256, size = save_hashed({k: v.detach().clone() for k, v in state.items()}, folder, name)
        (folder / "checkpoint").mkdir()
        shutil.copyfile(checkpoint, folder / "checkpoint" / checkpoint.name)
        shutil.copyfile(args_file, folder / "checkpoint" / "args.json")
        files = {backbone.name: sha256, f"checkpoint/{checkpoint.name}": sha256_file(checkpoint)}
        card = render_card(name, args, arch, stem, files, checked_results, split)
        (folder / CARD_FILE).write_text(card)
        entry = {"name": name, "arch": arch, "stem": stem, "tf_same_padding": False, "urls": [],
                 "sha256": sha256, "size": size, "metrics": metrics_by_protocol(checked_results),
                 "card": CARD_FILE}
        (folder / ENTRY_FILE).write_text(json.dumps(entry, indent=2) + "\n")
        write_sha256sums(folder)
    return Path(out_dir) / name

