"""``solo-semppl pretrain`` with bad input: stopped before training with the key or file named and
nothing written, or (bad_images=skip) trained on the readable images with a consistent split."""
import json

import pytest
import torch
from omegaconf import OmegaConf

from conftest import needs_solo
from image_files import corrupt, make_folder

SMALL = [
    "optimizer.batch_size=8", "backbone.kwargs.width=8", "max_epochs=1", "semi_supervised.fraction=0.25",
    "method_kwargs.proj_hidden_dim=32", "method_kwargs.proj_output_dim=16", "method_kwargs.pred_hidden_dim=32",
    "method_kwargs.num_negatives=5", "data.val_path=null", "+enable_progress_bar=False",
]


def pretrain(train, out, extra=()):
    from solo_semppl.cli.main import main

    return main(["pretrain", "--config-name", "digits/semppl", f"data.train_path={train}", f"checkpoint.dir={out}", *SMALL, *extra])


@needs_solo
@pytest.mark.slow
def test_corrupt_image_stops_the_cli_before_training_naming_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train = make_folder(tmp_path / "train", per_class=8, size=16)
    corrupt(train / "class1" / "1_3.png")
    with pytest.raises(SystemExit):
        pretrain(train, tmp_path / "runs")
    err = capsys.readouterr().err
    assert "data.train_path: 1 of 24 images cannot be read" in err and "class1/1_3.png" in err
    assert not (tmp_path / "runs").exists()


@needs_solo
def test_skip_trains_on_readable_images_and_eval_sees_the_same_indices(tmp_path, monkeypatch):
    from solo_semppl.eval.checkpoint import load_run
    from solo_semppl.eval.data import dataset, labelled_indices

    monkeypatch.chdir(tmp_path)
    train = make_folder(tmp_path / "train", per_class=8, size=16)
    corrupt(train / "class1" / "1_3.png")
    (train / "class2" / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match="leaving out 1 of 24 images"):  # visible: hydra logging is off
        assert pretrain(train, tmp_path / "runs", ["data.bad_images=skip"]) == 0
    (run_dir,) = (tmp_path / "runs" / "semppl").iterdir()
    lines = (run_dir / "bad_images.txt").read_text().splitlines()
    assert [line.split("\t")[:2] for line in lines] == [["train", "class1/1_3.png"], ["train", "class2/notes.txt"]]
    args = json.loads((run_dir / "args.json").read_text())
    assert args["data"]["skipped_images"] == {"train": ["class1/1_3.png"]}
    split = json.loads((run_dir / "split.json").read_text())
    assert split["num_samples"] == 23
    run = load_run(run_dir)
    train_ds = dataset(run.args, True, None)
    assert len(train_ds) == 23 and labelled_indices(run, train_ds).tolist() == split["labelled"]
    (ckpt,) = run_dir.glob("*.ckpt")
    assert torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]["labelled_mask"].numel() == 23


def test_missing_resume_checkpoint_is_an_error_before_anything(tmp_path):
    from solo_semppl.training.preflight import preflight

    cfg = OmegaConf.create({"resume_from_checkpoint": str(tmp_path / "gone.ckpt"), "data": {"dataset": "cifar10"}})
    with pytest.raises(ValueError, match=r"resume_from_checkpoint = '.*gone.ckpt': no such checkpoint file"):
        preflight(cfg)


def test_gpu_accelerator_without_cuda_says_what_a_cpu_run_needs(monkeypatch):
    from solo_semppl.training.preflight import preflight

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"accelerator = 'gpu' but no CUDA device is visible.*accelerator=cpu devices=1"):
        preflight(OmegaConf.create({"accelerator": "gpu", "data": {"dataset": "cifar10"}}))


@pytest.mark.parametrize("devices", [0, [], True, "abc", "0,x"])
def test_bad_devices_are_rejected(devices):
    from solo_semppl.training.devices import normalise_devices

    with pytest.raises(ValueError, match=r"devices = .*: expected a positive int, a list of ids or a string like '0,1'"):
        normalise_devices(OmegaConf.create({"devices": devices, "accelerator": "cpu"}))


@needs_solo
def test_unknown_method_lists_the_known_ones(tmp_path):
    from solo_fixtures import compose

    from solo_semppl.training.pretrain import run

    cfg = compose("semppl", [f"data.train_path={tmp_path}", f"checkpoint.dir={tmp_path / 'runs'}", "method=semppll"])
    with pytest.raises(ValueError, match=r"method = 'semppll': expected one of \[.*'semppl'"):
        run(cfg)
    assert not (tmp_path / "runs").exists()
