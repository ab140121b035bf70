"""Convert the official SemPPL (JAX/haiku) checkpoints to torchvision ResNet state dicts.

Input: a pickle with ``experiment_state['online_params']`` and ``['online_state']`` (read by
``safe_pickle.load_pickle``), or those two trees in memory. Each tree maps haiku module names
to ``{leaf name: array}`` (plain dicts or any ``collections.abc.Mapping``). Layout (SPEC 11):

==========================================================  ====================================
haiku (root ``res_net50`` / ``res_net200`` / ...)            torchvision key
==========================================================  ====================================
``<root>/~/initial_conv`` ``w`` (HWIO)                       ``conv1.weight`` (transposed 3,2,0,1)
``<root>/~/initial_batchnorm`` ``scale`` / ``offset``        ``bn1.weight`` / ``bn1.bias``
``.../block_group_{g}/~/block_{b}/~/conv_{k}`` ``w``          ``layer{g+1}.{b}.conv{k+1}.weight``
``.../batchnorm_{k}``                                        ``layer{g+1}.{b}.bn{k+1}.*``
``.../block_0/~/shortcut_conv`` / ``shortcut_batchnorm``     ``layer{g+1}.0.downsample.0`` / ``.1``
state ``<bn>/~/mean_ema`` / ``var_ema`` ``average``          ``running_mean`` / ``running_var``
state ``<bn>/~/mean_ema`` ``counter``                        ``num_batches_tracked``
state ``hidden`` and ``var_ema`` ``counter``                 not used (``average`` is debiased)
==========================================================  ====================================

BN scale/offset/averages are shaped (1, 1, 1, C). A leaf with one more dimension than that
carries the per-device axis: index 0 is taken. The width comes from the stem's output channels
(64 * width), the block counts from the root's depth (``OFFICIAL_BLOCKS``). Modules outside the
root (projector, predictor, classifier) are left out and reported. A key under the root that
this table does not know (e.g. selective-kernel modules), a missing key or a wrong shape is a
ValueError listing them ("unsupported layout"): nothing is written then.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .saving import save_hashed
from .backbones import OFFICIAL_BLOCKS, official_arch_name, official_resnet
from .safe_pickle import load_pickle
from .state import key_listing

_ROOT = re.compile(r"res_net(\d+)")
SEP = "/~/"
Key = Tuple[str, str]  # (haiku module name, leaf name)


@dataclass
class OfficialConversion:
    """What ``convert_official_tree`` found and made.

    Attributes:
        state_dict: torchvision key -> tensor (float32; ``num_batches_tracked`` int64).
        arch: ``official_resnet{depth}_w{width}``, or None for a non-standard block list.
        root: the haiku root module (``res_net50``...).
        blocks: blocks per group; width: the width multiplier.
        ignored_modules: top-level modules outside the root that were left out.
    """

    state_dict: Dict[str, torch.Tensor]
    arch: Optional[str]
    root: str
    blocks: Tuple[int, ...]
    width: int
    ignored_modules: List[str] = field(default_factory=list)


def _flatten(tree: object, what: str) -> Dict[Key, object]:
    """``{module: {leaf: array}}`` -> ``{(module, leaf): array}``."""
    if not isinstance(tree, Mapping):
        raise ValueError(f"{what}: expected a mapping of haiku module names, got {type(tree).__name__}")
    flat = {}
    for module, leaves in tree.items():
        if not isinstance(leaves, Mapping):
            raise ValueError(f"unsupported layout: {what}[{module!r}] is a {type(leaves).__name__}, not a mapping of leaves")
        flat.update({(str(module), str(leaf)): value for leaf, value in leaves.items()})
    return flat


def _key_tables(root: str, blocks: Sequence[int]) -> Tuple[Dict[Key, Tuple[str, str]], Dict[Key, Tuple[str, str]]]:
    """(params table, state table): (haiku module, leaf) -> (torch key or "", kind)."""
    params, state = {}, {}

    def conv(haiku: str, torch_name: str) -> None:
        params[(f"{root}{SEP}{haiku}", "w")] = (f"{torch_name}.weight", "conv")

    def batchnorm(haiku: str, torch_name: str) -> None:
        module = f"{root}{SEP}{haiku}"
        params[(module, "scale")] = (f"{torch_name}.weight", "vector")
        params[(module, "offset")] = (f"{torch_name}.bias", "vector")
        for ema, stat in (("mean_ema", "running_mean"), ("var_ema", "running_var")):
            state[(f"{module}{SEP}{ema}", "average")] = (f"{torch_name}.{stat}", "vector")
            state[(f"{module}{SEP}{ema}", "hidden")] = ("", "unused")
        state[(f"{module}{SEP}mean_ema", "counter")] = (f"{torch_name}.num_batches_tracked", "counter")
        state[(f"{module}{SEP}var_ema", "counter")] = ("", "unused")

    conv("initial_conv", "conv1")
    batchnorm("initial_batchnorm", "bn1")
    for g, n_blocks in enumerate(blocks):
        for b in range(n_blocks):
            haiku, torch_name = f"block_group_{g}{SEP}block_{b}", f"layer{g + 1}.{b}"
            for k in range(3):
                conv(f"{haiku}{SEP}conv_{k}", f"{torch_name}.conv{k + 1}")
                batchnorm(f"{haiku}{SEP}batchnorm_{k}", f"{torch_name}.bn{k + 1}")
            if b == 0:
                conv(f"{haiku}{SEP}shortcut_conv", f"{torch_name}.downsample.0")
                batchnorm(f"{haiku}{SEP}shortcut_batchnorm", f"{torch_name}.downsample.1")
    return params, state


def _haiku_shape(kind: str, torch_shape: Tuple[int, ...]) -> Tuple[int, ...]:
    if kind == "conv":
        out_c, in_c, kh, kw = torch_shape
        return (kh, kw, in_c, out_c)
    return (1, 1, 1) + torch_shape if kind == "vector" else ()


def _to_torch(kind: str, value: np.ndarray) -> torch.Tensor:
    if kind == "conv":
        return torch.from_numpy(np.ascontiguousarray(np.transpose(value, (3, 2, 0, 1)), dtype=np.float32))
    if kind == "vector":
        return torch.from_numpy(np.array(value, dtype=np.float32).reshape(-1))
    return torch.tensor(int(value), dtype=torch.int64)


def _find_root(flat: Dict[Key, object]) -> str:
    roots = sorted({module.split(SEP)[0] for module, _ in flat if _ROOT.fullmatch(module.split(SEP)[0])})
    if len(roots) != 1:
        modules = sorted({module for module, _ in flat})
        raise ValueError(
            f"unsupported layout: expected one haiku ResNet root (res_net50, res_net200, ...), "
            f"found {roots or 'none'}; modules: {key_listing(modules)}"
        )
    return roots[0]


def _initial_conv_width(params: Dict[Key, object], root: str) -> int:
    stem = params.get((f"{root}{SEP}initial_conv", "w"))
    out_channels = np.shape(stem)[-1] if stem is not None and np.ndim(stem) >= 4 else 0
    if out_channels == 0 or out_channels % 64:
        raise ValueError(f"unsupported layout: {root}/~/initial_conv w must be HWIO with 64*width outputs, got shape {np.shape(stem)}")
    return out_channels // 64


def plan_official_conversion(params_tree, state_tree, blocks: Optional[Sequence[int]] = None):
    """Match every key of the two trees to a torchvision key and check the shapes.

    Nothing is copied (fine for full-size trees). Args as ``convert_official_tree``.

    Returns:
        (plan, info): plan is a list of (torch key, kind, haiku leaf with the per-device axis
        removed), one per torchvision key of the model; info is an ``OfficialConversion``
        with an empty ``state_dict``.
    """
    params, state = _flatten(params_tree, "online_params"), _flatten(state_tree, "online_state")
    root = _find_root({**params, **state})
    depth = int(_ROOT.fullmatch(root)[1])
    if blocks is None:
        if depth not in OFFICIAL_BLOCKS:
            raise ValueError(f"unsupported layout: no block list known for {root}; pass blocks=")
        blocks = OFFICIAL_BLOCKS[depth]
    blocks = tuple(int(b) for b in blocks)
    width = _initial_conv_width(params, root)
    with torch.device("meta"):
        expected = official_resnet(blocks, width).state_dict()
    plan, unknown, bad_shapes = [], [], []
    ignored = sorted({m.split(SEP)[0] for m, _ in {**params, **state} if m.split(SEP)[0] != root})
    for tree_name, flat, table in zip(("online_params", "online_state"), (params, state), _key_tables(root, blocks)):
        for key, value in flat.items():
            if key[0].split(SEP)[0] != root:
                continue
            if key not in table:
                unknown.append(f"{tree_name}: {key[0]}/{key[1]}")
                continue
            torch_key, kind = table[key]
            if kind == "unused":
                continue
            want = _haiku_shape(kind, tuple(expected[torch_key].shape))
            if np.ndim(value) == len(want) + 1:
                value = value[0]
            if tuple(np.shape(value)) != want:
                bad_shapes.append(f"{key[0]}/{key[1]} {tuple(np.shape(value))} (expected {want})")
            plan.append((torch_key, kind, value))
    missing = set(expected) - {torch_key for torch_key, _, _ in plan}
    if unknown or missing or bad_shapes:
        problems = [f"{len(unknown)} unknown key(s): {key_listing(unknown)}" if unknown else "",
                    f"{len(missing)} torchvision key(s) without a source: {key_listing(missing)}" if missing else "",
                    f"{len(bad_shapes)} wrong shape(s): {key_listing(bad_shapes)}" if bad_shapes else ""]
        raise ValueError(f"unsupported layout for {root} blocks {list(blocks)} width {width}: "
                         + "; ".join(p for p in problems if p))
    arch = official_arch_name(depth, width) if OFFICIAL_BLOCKS.get(depth) == blocks else None
    return plan, OfficialConversion({}, arch, root, blocks, width, ignored)


def convert_official_tree(params_tree, state_tree, blocks: Optional[Sequence[int]] = None) -> OfficialConversion:
    """Convert haiku ``online_params`` / ``online_state`` trees to a torchvision state dict.

    Args:
        params_tree: ``experiment_state['online_params']`` (module -> {leaf: array}).
        state_tree: ``experiment_state['online_state']``.
        blocks: blocks per group; default from the root name (``res_net50`` -> [3, 4, 6, 3]).
            Give it only for non-standard trees (e.g. tiny test networks).

    Returns:
        ``OfficialConversion`` whose ``state_dict`` loads strictly into
        ``official_resnet(blocks, width)``.
    """
    plan, info = plan_official_conversion(params_tree, state_tree, blocks)
    info.state_dict = {torch_key: _to_torch(kind, value) for torch_key, kind, value in plan}
    return info


def read_official_pickle(path: Union[str, Path], trusted: bool = False):
    """``(online_params, online_state)`` of an official checkpoint file (see ``safe_pickle``)."""
    data = load_pickle(path, trusted=trusted)
    experiment = data.get("experiment_state") if isinstance(data, Mapping) else None
    if not isinstance(experiment, Mapping) or not {"online_params", "online_state"} <= set(experiment):
        raise ValueError(f"{path}: not an official SemPPL checkpoint (expected "
                         "experiment_state['online_params'] and ['online_state'])")
    return experiment["online_params"], experiment["online_state"]


def convert_official_file(
    path: Union[str, Path],
    out_dir: Union[str, Path],
    name: Optional[str] = None,
    trusted: bool = False,
    blocks: Optional[Sequence[int]] = None,
) -> Dict[str, object]:
    """Convert an official pickle to ``<out_dir>/<name>-<8 hex>.pth`` (written atomically).

    Args:
        path: the official ``.pkl`` file.
        out_dir: folder for the converted backbone state dict (created if needed).
        name: file name stem; default the pickle's stem (e.g. ``resnet_50_1x_1_pct``).
        trusted: unrestricted unpickling (see ``safe_pickle``).
        blocks: see ``convert_official_tree``.

    Returns:
        A summary: ``file``, ``arch``, ``sha256``, ``size``, ``root``, ``blocks``, ``width``,
        ``ignored_modules`` and ``tf_same_padding`` (True: the official network pads like TF).
    """
    params, state = read_official_pickle(path, trusted=trusted)
    result = convert_official_tree(params, state, blocks)
    target, sha256, size = save_hashed(result.state_dict, Path(out_dir), name or Path(path).stem)
    return {
        "file": str(target), "arch": result.arch, "sha256": sha256, "size": size, "root": result.root,
        "blocks": list(result.blocks), "width": result.width, "ignored_modules": result.ignored_modules,
        "tf_same_padding": True,
    }
