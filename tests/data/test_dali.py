"""The DALI data path on CPU: dataset indices, the labelled mask, crops, seeding, config checks,
and ``solo-semppl pretrain`` with ``data.format=dali`` (needs solo-learn and NVIDIA DALI)."""
import importlib.util
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import needs_solo

HAS_DALI = importlib.util.find_spec("nvidia") is not None and importlib.util.find_spec("nvidia.dali") is not None
pytestmark = [needs_solo, pytest.mark.skipif(not HAS_DALI, reason="NVIDIA DALI is not installed (pip install 'solo-semppl[dali]')")]

DALI = ["data.format=dali", "+dali.device=cpu", "+dali.encode_indexes_into_labels=true", "data.num_workers=1"]
CLASSES, PER_CLASS, SIZE = 3, 8, 32


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """``train/class<c>/<i>.png``: solid images whose red level is 10 x their ImageFolder index."""
    root = tmp_path_factory.mktemp("dali") / "train"
    for c in range(CLASSES):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(PER_CLASS):
            index = c * PER_CLASS + i
            Image.fromarray(np.full((SIZE, SIZE, 3), (10 * index, 128, 64), np.uint8)).save(root / f"class{c}" / f"{i}.png")
    return root


def parsed_cfg(folder, extra=()):
    from solo_fixtures import tiny_cfg

    from solo_semppl.data.dali_config import check_dali_config

    cfg = tiny_cfg("semppl", folder, [*DALI, "semi_supervised.fraction=0.25", *extra])
    check_dali_config(cfg)
    return cfg


def module_batches(cfg):
    """One epoch of the module's batches, set up as Lightning would on one CPU process."""
    from solo_semppl.data.dali_module import SemiDALIDataModule

    module = SemiDALIDataModule.from_cfg(cfg)
    module.trainer = SimpleNamespace(local_rank=0, global_rank=0, world_size=1)
    module.setup("fit")
    return list(module.train_dataloader())


def no_random_augmentations(cfg):
    for aug in cfg.augmentations:
        aug.rrc.enabled, aug.color_jitter.prob, aug.gaussian_blur.prob, aug.solarization.prob = False, 0.0, 0.0, 0.0
    return cfg


def test_batches_carry_imagefolder_indices_labels_and_the_split_mask(folder):
    from torchvision.datasets import ImageFolder

    from solo_semppl.data.semi_config import resolve_split

    cfg = no_random_augmentations(parsed_cfg(folder))
    split = resolve_split(cfg)
    batches = module_batches(cfg)
    targets = torch.tensor(ImageFolder(str(folder)).targets)
    assert len(batches) == CLASSES * PER_CLASS // 8
    indexes = torch.cat([b[0] for b in batches])
    assert sorted(indexes.tolist()) == list(range(CLASSES * PER_CLASS))
    assert indexes.tolist() != sorted(indexes.tolist()), "the reader shuffles"
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])  # custom: ImageNet's
    for index, crops, target in batches:
        assert [tuple(c.shape) for c in crops] == [(8, 3, 16, 16)] * 4 + [(8, 3, 8, 8)] * 2
        assert torch.equal(target, targets[index])
        red = (crops[0][:, 0].mean((1, 2)) * std[0] + mean[0]) * 255
        assert torch.equal((red / 10).round().long(), index), "each crop comes from the file its index names"
    labelled = split.mask()[indexes]
    assert labelled.sum() == len(split.labelled) and set(indexes[labelled].tolist()) == set(split.labelled.tolist())


def test_with_the_random_parts_off_dali_crops_equal_torchvision_crops(tmp_path):
    """Same config through both paths: normalisation, channel order, layout and flip agree."""
    from solo.data.pretrain_dataloader import build_transform_pipeline
    from solo_fixtures import make_image_folder
    from torchvision.datasets import ImageFolder

    train = make_image_folder(tmp_path, size=16)
    cfg = no_random_augmentations(parsed_cfg(train))
    for aug in cfg.augmentations:
        aug.horizontal_flip.prob = 1.0
    index, crops, _ = module_batches(cfg)[0]
    reference = ImageFolder(str(train), transform=build_transform_pipeline(cfg.data.dataset, cfg.augmentations[0]))
    for row, i in enumerate(index.tolist()):
        torch.testing.assert_close(crops[0][row], reference[i][0], atol=0.02, rtol=0)

def test_without_index_encoding_indexes_are_placeholders(folder):
    cfg = parsed_cfg(folder, ["semi_supervised.fraction=null", "dali.encode_indexes_into_labels=false"])
    assert all(b[0].tolist() == list(range(8)) for b in module_batches(cfg))


def test_the_run_seed_drives_the_crops(folder):
    first = [module_batches(parsed_cfg(folder, [f"seed={s}"]))[0] for s in (1, 1, 2)]
    assert torch.equal(first[0][1][0], first[1][1][0]) and torch.equal(first[0][0], first[1][0])
    assert not torch.equal(first[0][1][0], first[2][1][0])


@pytest.mark.parametrize("extra, key", [
    (["data.dataset=cifar10"], "data.dataset"),
    (["dali.encode_indexes_into_labels=false"], "dali.encode_indexes_into_labels"),
    (["dali.device=tpu"], "dali.device"),
    (["+dali.typo=1"], "dali.typo"),
    (["augmentations.0.equalization.prob=0.2"], "augmentations[0].equalization.prob"),
    (["+data.fraction=0.5"], "data.fraction"),
    (["+semi_supervised.labelled_per_batch=2"], "semi_supervised.labelled_per_batch"),
])
def test_config_errors_name_the_key(folder, extra, key):
    from solo_fixtures import compose

    from solo_semppl.data.dali_config import check_dali_config

    cfg = compose("semppl", [f"data.train_path={folder}", *DALI, *extra])
    with pytest.raises(ValueError, match=key.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        check_dali_config(cfg)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_gpu_dali_without_cuda_is_an_error(folder):
    from solo_fixtures import compose

    from solo_semppl.data.dali_config import check_dali_config

    with pytest.raises(ValueError, match="dali.device = 'gpu' needs CUDA"):
        check_dali_config(compose("semppl", [f"data.train_path={folder}", *DALI, "dali.device=gpu"]))


def test_a_folder_dali_would_read_differently_is_an_error(folder, tmp_path):
    import shutil

    from solo_fixtures import compose

    from solo_semppl.data.dali_config import check_dali_config

    copy = tmp_path / "train"
    shutil.copytree(folder, copy)
    (copy / "class1" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="data.train_path=.*first difference at position 16 .*notes.txt"):
        check_dali_config(compose("semppl", [f"data.train_path={copy}", *DALI]))
    check_dali_config(compose("semppl", [f"data.train_path={copy}", *DALI, "semi_supervised.fraction=null"]))


def test_missing_dali_is_an_error(monkeypatch, folder):
    from solo_fixtures import compose

    from solo_semppl.data import dali_config

    real = importlib.util.find_spec
    monkeypatch.setattr(dali_config.importlib.util, "find_spec", lambda name: None if name.startswith("nvidia") else real(name))
    with pytest.raises(ValueError, match="data.format: dali needs NVIDIA DALI"):
        dali_config.check_dali_config(compose("semppl", [f"data.train_path={folder}", *DALI]))


def test_pretrain_runs_semppl_on_cpu_dali(folder, tmp_path):
    from solo_semppl.cli.main import main

    overrides = [
        f"data.train_path={folder}", "data.val_path=null", f"checkpoint.dir={tmp_path}", *DALI,
        "semi_supervised.fraction=0.25", "optimizer.batch_size=8", "backbone.kwargs.width=8", "max_epochs=1",
        "method_kwargs.proj_hidden_dim=32", "method_kwargs.proj_output_dim=16", "method_kwargs.pred_hidden_dim=32",
        "method_kwargs.num_negatives=5",
    ]
    assert main(["pretrain", "--config-name", "digits/semppl", *overrides]) == 0
    (run_dir,) = [p for p in (tmp_path / "semppl").iterdir() if p.is_dir()]
    args = json.loads((run_dir / "args.json").read_text())
    assert args["data"]["format"] == "dali" and args["dali"] == {"device": "cpu", "encode_indexes_into_labels": True}
    (ckpt,) = list(run_dir.glob("*.ckpt"))
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert checkpoint["global_step"] == CLASSES * PER_CLASS // 8
    split = json.loads((run_dir / "split.json").read_text())
    assert checkpoint["state_dict"]["labelled_mask"].nonzero().flatten().tolist() == split["labelled"]


@pytest.mark.parametrize("group", ["imagenet", "imagenet-100", "custom"])
def test_shipped_configs_switch_to_dali_with_one_key(folder, group):
    from solo_fixtures import compose

    from solo_semppl.data.dali_config import check_dali_config

    cfg = compose("semppl", [f"data.train_path={folder}", "data.format=dali", "dali.device=cpu"], group=group)
    check_dali_config(cfg)
    assert cfg.dali.encode_indexes_into_labels is True
