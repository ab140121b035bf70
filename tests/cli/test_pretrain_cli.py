"""``solo-semppl pretrain`` end to end on CPU, and the methods under upstream main_pretrain.py
through the hydra callback (needs solo-learn)."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, needs_solo

pytestmark = needs_solo

SMALL = [
    "optimizer.batch_size=8", "backbone.kwargs.width=8", "max_epochs=1",
    "method_kwargs.proj_hidden_dim=32", "method_kwargs.proj_output_dim=16",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from solo_fixtures import make_image_folder

    root = tmp_path_factory.mktemp("data")
    make_image_folder(root)
    make_image_folder(root / "v")
    return root


def run_pretrain(method, folder, out, extra=()):
    from solo_semppl.cli.main import main

    overrides = SMALL + [
        f"data.train_path={folder / 'train'}", f"data.val_path={folder / 'v' / 'train'}",
        f"checkpoint.dir={out}", "semi_supervised.fraction=0.25", "limit_val_batches=1.0", *extra,
    ]
    if method != "simclr":
        overrides.append("method_kwargs.pred_hidden_dim=32")
    if method in ("relic", "semppl"):
        overrides.append("method_kwargs.num_negatives=5")
    assert main(["pretrain", "--config-name", f"digits/{method}", *overrides]) == 0
    (run_dir,) = [p for p in (out / method).iterdir() if p.is_dir()]
    return run_dir


@pytest.mark.parametrize("method", ["semppl", "relic", "simclr", "byol"])
@pytest.mark.slow
def test_each_method_trains_and_writes_a_solo_learn_run_folder(method, folder, tmp_path):
    run_dir = run_pretrain(method, folder, tmp_path)
    args = json.loads((run_dir / "args.json").read_text())
    assert args["method"] == method
    assert args["data"]["num_large_crops"] == 4 and args["data"]["num_small_crops"] == 2
    (ckpt,) = list(run_dir.glob("*.ckpt"))
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    assert any(k.startswith("backbone.") for k in state)
    metrics = (run_dir / "metrics.csv").read_text().splitlines()
    assert len(metrics) > 1 and "val_acc1" in metrics[0]
    if method in ("semppl", "relic"):
        split = json.loads((run_dir / "split.json").read_text())
        assert split["sha256"] == args["semi_supervised"]["sha256"] and len(split["labelled"]) == 6
        assert state["labelled_mask"].nonzero().flatten().tolist() == split["labelled"]
    if method == "semppl":
        assert "train_pl_accuracy_epoch" in metrics[0] or "train_pl_accuracy" in metrics[0]


def test_logged_values_are_written_at_the_logger_cadence_with_their_epoch_means(folder, tmp_path, monkeypatch):
    """EpochMeans + cadence logging writes what self.log(on_epoch=True) would: train_<name>_step
    on the logger's steps only, train_<name>_epoch the mean over all the epoch's steps."""
    import csv

    import solo_semppl.methods.semi as semi

    seen = []  # every step's logged values, as finish_step hands them to EpochMeans
    add = semi.EpochMeans.add
    monkeypatch.setattr(semi.EpochMeans, "add", lambda self, values: seen.append(
        {k: float(v.detach()) for k, v in values.items()}) or add(self, values))
    run_dir = run_pretrain("semppl", folder, tmp_path, ["max_epochs=2", "log_every_n_steps=2"])
    with open(run_dir / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    steps_per_epoch = len(seen) // 2
    logged_steps = [int(r["step"]) for r in rows if r.get("train_ssl_loss_step")]
    assert logged_steps == [s for s in range(len(seen)) if (s + 1) % 2 == 0]
    for r in rows:
        if r.get("train_ssl_loss_step"):
            assert float(r["train_ssl_loss_step"]) == pytest.approx(seen[int(r["step"])]["train_ssl_loss"], rel=1e-5)
    epochs = [r for r in rows if r.get("train_pl_accuracy_epoch")]
    assert [int(r["epoch"]) for r in epochs] == [0, 1]
    for epoch, r in enumerate(epochs):
        values = seen[epoch * steps_per_epoch:(epoch + 1) * steps_per_epoch]
        for name in ("train_ssl_loss", "train_pl_accuracy", "train_queue_fill"):
            assert float(r[f"{name}_epoch"]) == pytest.approx(sum(v[name] for v in values) / len(values), rel=1e-5)


def test_installed_config_names_resolve(tmp_path):
    from solo_semppl.cli.pretrain import resolve_config_args

    argv = resolve_config_args(["--config-name", "digits/semppl", "max_epochs=2"])
    assert argv[0] == "--config-path" and argv[1].endswith("pretrain/digits")
    assert argv[2:] == ["--config-name", "semppl", "max_epochs=2"]
    with pytest.raises(SystemExit, match="no installed configs for 'nope'"):
        resolve_config_args(["--config-name=nope/semppl"])


@pytest.mark.slow
def test_semppl_loss_falls_when_overfitting_a_tiny_set(folder):
    from solo_fixtures import build, dataset_of

    from solo_fixtures import fit

    # solo-learn scales the lr by batch / 256: 16 x 8 / 256 = 0.5
    model = build("semppl", folder / "train", ["optimizer.lr=16"])
    losses = fit(model, dataset_of(model), steps=60)
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 * 0.9, losses
    # learning, not collapse: the contrastive term is below its collapsed value log(1 + 5 negatives)
    assert float(model.trainer.callback_metrics["train_relic_contrastive_epoch"]) < math.log(6) - 0.2


def upstream_checkout():
    """A solo-learn checkout (editable install) that has upstream main_pretrain.py, or None."""
    import solo

    script = Path(solo.__file__).resolve().parents[1] / "main_pretrain.py"
    return script if script.is_file() else None


@pytest.mark.slow
def test_upstream_main_pretrain_runs_semppl_through_the_callback(folder, tmp_path):
    script = upstream_checkout()
    if script is None:
        pytest.skip("solo-learn is not installed from a checkout (pip install -e <solo-learn>): no main_pretrain.py")
    config_dir = REPO / "scripts" / "pretrain" / "digits"
    cmd = [
        sys.executable, str(script), "--config-path", str(config_dir), "--config-name", "semppl",
        *SMALL, "method_kwargs.pred_hidden_dim=32", "method_kwargs.num_negatives=5", "devices='1'", "accelerator=cpu",
        "augmentations=symmetric_2x16.yaml",
        f"data.train_path={folder / 'train'}", "data.val_path=null", f"checkpoint.dir={tmp_path}",
        "semi_supervised.fraction=0.25",
        "+hydra.callbacks.solo_semppl._target_=solo_semppl.hydra_callback.RegisterMethods",
    ]
    root = str(REPO)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert list((tmp_path / "semppl").rglob("*.ckpt"))


@pytest.mark.parametrize("pipeline,dataset", [("tensor", "BatchedCrops"), ("torchvision", "SeededSamples")])
def test_data_pipeline_selects_the_training_loader(pipeline, dataset, folder):
    from solo.args.pretrain import parse_cfg
    from solo_fixtures import compose

    from solo_semppl.training.devices import normalise_devices
    from solo_semppl.training.pretrain import build_data

    cfg = compose("semppl", [f"data.train_path={folder / 'train'}", "data.val_path=null", "optimizer.batch_size=8",
                             f"data.pipeline={pipeline}"])
    normalise_devices(cfg)
    loader, _ = build_data(parse_cfg(cfg), None)
    assert type(loader.dataset).__name__ == dataset
    loader.batch_sampler.set_epoch(1)
    indexes, crops, targets = next(iter(loader))
    assert indexes.shape == targets.shape == (8,) and [tuple(c.shape) for c in crops] == [(8, 3, 16, 16)] * 4 + [(8, 3, 8, 8)] * 2
