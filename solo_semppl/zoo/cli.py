"""``solo-semppl zoo``: export, publish, download, verify, convert-official, list, solo-ckpt.

``main(argv)`` parses ``argv`` (the words after ``zoo``) and returns an exit status: 0 on
success, 1 on a checked error (printed as ``solo-semppl zoo: error: ...``), 2 on bad usage.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from .convert_official import convert_official_file
from .downloader import DownloadError, download
from .export import export_release
from .hashing import verify_file, verify_release
from .loader import save_solo_checkpoint
from .manifest import find_entry, publish, read_manifest

PROG = "solo-semppl zoo"


def _export(args: argparse.Namespace) -> None:
    folder = export_release(args.checkpoint, args.out, name=args.name, results=args.results,
                            split_file=args.split_file, args_path=args.args, trusted=args.trusted)
    print(folder)


def _publish(args: argparse.Namespace) -> None:
    print(json.dumps(publish(args.release, args.url, manifest=args.manifest), indent=2))


def _download(args: argparse.Namespace) -> None:
    print(download(args.name, cache_dir=args.cache_dir, manifest=args.manifest,
                   retries=args.retries, backoff=args.backoff, timeout=args.timeout))


def _verify(args: argparse.Namespace) -> None:
    path = Path(args.path)
    if path.is_dir():
        files = verify_release(path)
        print(f"OK {path}: {len(files)} files match SHA256SUMS")
        return
    sha256 = find_entry(args.name, args.manifest)["sha256"] if args.name else args.sha256
    print(f"OK {path}: sha256 {verify_file(path, sha256)}")


def _convert(args: argparse.Namespace) -> None:
    print(json.dumps(convert_official_file(args.pickle, args.out, name=args.name, trusted=args.trusted), indent=2))


def _solo_ckpt(args: argparse.Namespace) -> None:
    overrides = save_solo_checkpoint(args.name, args.out, cache_dir=args.cache_dir, manifest=args.manifest)
    kwargs = overrides.pop("backbone.kwargs")  # printed as hydra overrides for main_linear.py
    overrides.update({f"++backbone.kwargs.{key}": value for key, value in kwargs.items()})
    print(" ".join(f"{key}={value}" for key, value in overrides.items()))


def _list(args: argparse.Namespace) -> None:
    entries = read_manifest(args.manifest)
    if not entries:
        print("the manifest lists no models yet")
    for entry in entries:
        metrics = "; ".join(f"{protocol}: {json.dumps(values)}" for protocol, values in entry["metrics"].items())
        print(f"{entry['name']}\t{entry['arch']} ({entry['stem']} stem)\t{entry['size']} bytes\t{metrics or '-'}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``solo-semppl zoo``."""
    parser = argparse.ArgumentParser(prog=PROG, description="SemPPL model zoo tools")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, run, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.set_defaults(run=run)
        return cmd

    def manifest_option(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("--manifest", help="manifest file (default $SOLO_SEMPPL_MANIFEST or zoo/manifest.json)")

    def trusted_option(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("--trusted", action="store_true", help="allow arbitrary pickled objects (only for files you trust)")

    cmd = command("export", _export, "write a release folder from a solo-learn checkpoint")
    cmd.add_argument("checkpoint", help="solo-learn checkpoint (.ckpt) with args.json beside it")
    cmd.add_argument("--out", required=True, help="parent folder of the release folder")
    cmd.add_argument("--name", help="release name (default: args.json 'name')")
    cmd.add_argument("--results", help="results JSON: protocol, command, metrics per entry")
    cmd.add_argument("--split-file", help="labelled-split file used for pretraining (hashed in the card)")
    cmd.add_argument("--args", help="args.json if not beside the checkpoint")
    trusted_option(cmd)

    cmd = command("publish", _publish, "add a verified release to the manifest")
    cmd.add_argument("release", help="release folder written by 'export'")
    cmd.add_argument("--url", action="append", required=True, help="download URL of the .pth (repeatable)")
    manifest_option(cmd)

    cmd = command("download", _download, "download a model's backbone file (verified, cached); prints its path")
    cmd.add_argument("name")
    cmd.add_argument("--cache-dir", help="default <cache root>/zoo, the cache root being $SOLO_SEMPPL_CACHE or ~/.cache/solo_semppl")
    cmd.add_argument("--retries", type=int, default=3, help="extra attempts per URL (default 3)")
    cmd.add_argument("--backoff", type=float, default=1.0, help="seconds before the first retry, doubling (default 1)")
    cmd.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds (default 60)")
    manifest_option(cmd)

    cmd = command("verify", _verify, "check a release folder against SHA256SUMS, or a file's sha256")
    cmd.add_argument("path")
    which = cmd.add_mutually_exclusive_group()
    which.add_argument("--sha256", help="expected sha256 of a file")
    which.add_argument("--name", help="check a file against this manifest entry's sha256")
    manifest_option(cmd)

    cmd = command("convert-official", _convert, "convert an official SemPPL JAX pickle to a torchvision state dict")
    cmd.add_argument("pickle")
    cmd.add_argument("--out", required=True, help="folder for <name>-<8 hex>.pth")
    cmd.add_argument("--name", help="file name stem (default: the pickle's)")
    trusted_option(cmd)

    cmd = command("list", _list, "list the models of the manifest")
    manifest_option(cmd)

    cmd = command("solo-ckpt", _solo_ckpt, "write a model as a .ckpt for solo-learn's main_linear.py; "
                                            "prints its overrides")
    cmd.add_argument("name")
    cmd.add_argument("--out", required=True, help="the .ckpt to write")
    cmd.add_argument("--cache-dir", help="download cache (default as for download)")
    manifest_option(cmd)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``solo-semppl zoo`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2)
        return int(exit_.code or 0)
    try:
        args.run(args)
    except (ValueError, DownloadError, OSError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
