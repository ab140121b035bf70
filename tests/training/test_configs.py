"""Every shipped pretrain config composes, uses only valid keys, and the methods of a
dataset share data, split, augmentations and budget (like for like)."""
from collections import defaultdict
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import REPO, needs_solo
from solo_semppl.training.configs import compose

CONFIGS = REPO / "scripts" / "pretrain"
METHOD_FILES = sorted(p for p in CONFIGS.glob("*/*.yaml") if not p.name.startswith("_"))
SHARED_KEYS = ("data", "semi_supervised", "augmentations", "max_epochs", "optimizer.batch_size", "backbone", "seed")
METHODS = ("relic", "semppl", "simclr", "byol", "suncet", "paws")
# the semi-supervised rivals also choose how many labelled images a batch carries
SAMPLER_KEYS = ("labelled_per_batch", "balanced_labelled")


def composed(path: Path):
    return compose(path.parent, path.stem, [])


@pytest.mark.parametrize("path", METHOD_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_config_composes_with_large_crops_first(path):
    cfg = composed(path)
    assert cfg.method in METHODS
    sizes = [aug.crop_size for aug in cfg.augmentations]
    large = sum(aug.num_crops for aug in cfg.augmentations if aug.crop_size == sizes[0])
    assert large >= 2 and sizes == sorted(sizes, reverse=True)
    if path.stem != "semppl_upstream":
        assert large == 4 and sum(a.num_crops for a in cfg.augmentations) == 6


@pytest.mark.slow
def test_methods_of_a_dataset_are_like_for_like():
    by_dataset = defaultdict(dict)
    for path in METHOD_FILES:
        if path.stem in METHODS:
            cfg = composed(path)
            for key in SAMPLER_KEYS:
                cfg.semi_supervised.pop(key, None)
            by_dataset[path.parent.name][path.stem] = cfg
    assert set(by_dataset) >= {"cifar", "cifar100", "stl10", "imagenet-100", "imagenet", "custom", "digits"}
    for dataset, methods in by_dataset.items():
        assert set(methods) == set(METHODS), dataset
        for key in SHARED_KEYS:
            values = {m: repr(OmegaConf.to_container(OmegaConf.create({"v": OmegaConf.select(c, key)}))) for m, c in methods.items()}
            assert len(set(values.values())) == 1, (dataset, key, values)


def test_imagenet_split_group_selects_the_simclr_lists():
    cfg = compose(CONFIGS / "imagenet", "semppl", ["split=1percent"])
    assert cfg.semi_supervised.file.endswith("1percent.txt") and cfg.semi_supervised.format == "simclr"
    assert compose(CONFIGS / "imagenet", "semppl", []).semi_supervised.file.endswith("10percent.txt")


@needs_solo
@pytest.mark.parametrize("path", [p for p in METHOD_FILES if p.stem in ("relic", "semppl", "semppl_upstream", "suncet", "paws")],
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_method_kwargs_are_valid_options(path):
    from solo_semppl.methods import METHODS
    from solo_semppl.options import apply_options

    cfg = composed(path)
    apply_options(cfg, "method_kwargs", METHODS[cfg.method].OPTIONS)


@needs_solo
@pytest.mark.parametrize("dataset", ["cifar", "stl10", "imagenet-100", "imagenet", "custom"])
def test_solo_learn_parse_cfg_accepts_them(dataset, tmp_path):
    from solo.args.pretrain import parse_cfg

    from solo_semppl.training.devices import normalise_devices

    for c in ("a", "b"):
        (tmp_path / c).mkdir()
    cfg = compose(CONFIGS / dataset, "semppl", [f"data.train_path={tmp_path}"])
    OmegaConf.set_struct(cfg, False)
    normalise_devices(cfg)
    cfg = parse_cfg(cfg)
    assert cfg.data.num_large_crops == 4 and cfg.data.num_small_crops == 2
    assert cfg.optimizer.lr == pytest.approx(0.3 * cfg.optimizer.batch_size / 256)
