"""A run stopped mid-epoch and resumed from ``last-step.ckpt`` reproduces the uninterrupted run
(queue, split, EMA tau, parameters, logged losses); checkpoint files are atomic."""
import csv
import json
import os
import random

import numpy as np
import pytest
import torch
from conftest import needs_solo

from solo_semppl.data.sampler import ShuffledBatchSampler
from solo_semppl.data.seeded import SeededSamples, rng_states, set_rng_states

# 24 images, batch 8: 3 steps an epoch; last-step.ckpt every 2 steps (step 4 is mid-epoch 1)
TINY = [
    "optimizer.batch_size=8", "backbone.kwargs.width=8", "max_epochs=2", "data.val_path=null",
    "method_kwargs.proj_hidden_dim=32", "method_kwargs.proj_output_dim=16", "method_kwargs.pred_hidden_dim=32",
    "method_kwargs.num_negatives=5", "semi_supervised.fraction=0.25", "checkpoint.every_n_steps=2",
    "log_every_n_steps=1", "auto_resume.enabled=True", "+enable_progress_bar=False", "+num_sanity_val_steps=0",
]


class Killed(Exception):
    """Stands for a crash right before optimiser step ``at`` + 1."""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from solo_fixtures import make_image_folder

    return make_image_folder(tmp_path_factory.mktemp("data"))


def pretrain(folder, out, extra=()):
    from solo_fixtures import CONFIG_DIR

    from solo_semppl.training.configs import compose
    from solo_semppl.training.pretrain import run

    cfg = compose(CONFIG_DIR / "digits", "semppl", TINY + [f"data.train_path={folder}", f"checkpoint.dir={out}", *extra])
    return run(cfg)


def final_state(run_dir):
    (ckpt,) = run_dir.glob("*ep=1.ckpt")
    return torch.load(ckpt, map_location="cpu", weights_only=False)


def step_losses(run_dir):
    """{step: train_ssl_loss_step}; a step logged twice (trained again after a crash) keeps its
    last value."""
    with open(run_dir / "metrics.csv", newline="") as handle:
        return {row["step"]: float(row["train_ssl_loss_step"]) for row in csv.DictReader(handle) if row["train_ssl_loss_step"]}


@needs_solo
@pytest.mark.parametrize("pipeline", ["tensor", "torchvision"])
@pytest.mark.slow
def test_a_run_resumed_mid_epoch_reproduces_the_uninterrupted_run(folder, tmp_path, monkeypatch, pipeline):
    from solo_semppl.training.resume import RESUME_KEY, StepCheckpointer

    extra = [f"data.pipeline={pipeline}"]
    straight = pretrain(folder, tmp_path / "a", extra)

    save = StepCheckpointer.on_train_batch_start

    def crash_at_step_5(self, trainer, *args):
        save(self, trainer, *args)
        if trainer.global_step == 5:
            raise Killed

    monkeypatch.setattr(StepCheckpointer, "on_train_batch_start", crash_at_step_5)
    with pytest.raises(Killed):
        pretrain(folder, tmp_path / "b", extra)
    (first,) = (tmp_path / "b" / "semppl").iterdir()
    saved = torch.load(first / "last-step.ckpt", map_location="cpu", weights_only=False)
    assert saved["global_step"] == 4 and saved[RESUME_KEY]["epoch"] == 1 and saved[RESUME_KEY]["batches"] == 1
    monkeypatch.setattr(StepCheckpointer, "on_train_batch_start", save)
    resumed = pretrain(folder, tmp_path / "b", extra)  # auto-resume: the newest checkpoint of the run folder
    assert resumed == first

    a, b = final_state(straight), final_state(resumed)
    assert a["global_step"] == b["global_step"] == 6
    assert a[RESUME_KEY]["tau"] == b[RESUME_KEY]["tau"] and a[RESUME_KEY]["tau"] > 0.99
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name
    assert (a["state_dict"]["queue.labels"] >= 0).any()
    assert json.loads((straight / "split.json").read_text()) == json.loads((resumed / "split.json").read_text())
    losses_a, losses_b = step_losses(straight), step_losses(resumed)
    assert len(losses_a) == 6 and losses_a == pytest.approx(losses_b, abs=1e-6)


@needs_solo
def test_a_failing_save_leaves_no_file_under_the_final_name(tmp_path, monkeypatch):
    from solo_semppl.training.resume import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    target = tmp_path / "last-step.ckpt"
    io.save_checkpoint({"step": 1}, target)

    def half_written(obj, handle):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_written)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"step": 2}, target)
    assert torch.load(target, weights_only=True) == {"step": 1}
    with pytest.raises(OSError):
        io.save_checkpoint({"step": 2}, tmp_path / "new.ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last-step.ckpt"]


def test_shuffled_batches_are_a_function_of_seed_and_epoch_and_resume_skips_the_trained_ones():
    first = list(ShuffledBatchSampler(30, 4, seed=3))
    assert len(first) == 7 and len({i for b in first for i in b}) == 28
    assert first == list(ShuffledBatchSampler(30, 4, seed=3))
    later = ShuffledBatchSampler(30, 4, seed=3)
    later.set_epoch(1)
    assert list(later) != first
    resumed = ShuffledBatchSampler(30, 4, seed=3)
    resumed.resume(epoch=0, batches=5)
    assert list(resumed) == first[5:] and len(resumed) == 7
    resumed.set_epoch(1)
    assert list(resumed) == list(later)
    ranks = [list(ShuffledBatchSampler(30, 4, seed=3, num_replicas=2, rank=r)) for r in (0, 1)]
    assert [b0 + b1 for b0, b1 in zip(*ranks)] == [first[2 * b] + first[2 * b + 1] for b in range(3)]
    tagged = ShuffledBatchSampler(30, 4, seed=3, tag_epoch=True)
    tagged.set_epoch(1)
    assert next(iter(tagged)) == [(1, i) for i in next(iter(later))]


class RandomItems(torch.utils.data.Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, index):
        return index, torch.rand(()).item(), random.random(), float(np.random.rand())


def test_seeded_samples_depend_on_seed_epoch_and_index_only_and_leave_the_torch_and_python_rng_alone():
    data = SeededSamples(RandomItems(), seed=1)
    torch.manual_seed(0)
    random.seed(0)
    first = [data[(2, i)] for i in range(10)]
    expected_next = torch.rand(()), random.random()
    torch.manual_seed(0)
    random.seed(0)
    assert [data[(2, i)] for i in reversed(range(10))] == first[::-1]
    assert (torch.rand(()), random.random()) == expected_next
    assert data[(3, 4)] != first[4] and SeededSamples(RandomItems(), seed=2)[(2, 4)] != first[4]
    assert len({item[1] for item in first}) == 10


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    states = rng_states()
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.save({"rng": states}, tmp_path / "rng.pt")
    set_rng_states(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    assert torch.equal(torch.rand(3), expected[0]) and random.random() == expected[1] and np.random.rand() == expected[2]


@needs_solo
def test_newest_checkpoint_and_the_step_switch(tmp_path):
    from solo_semppl.io.checkpoints import newest_checkpoint
    from solo_semppl.training.resume import StepCheckpointer

    for age, name in ((200, "run-ep=3.ckpt"), (100, "last-step.ckpt"), (300, "run-ep=2.ckpt")):
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (1e9 - age, 1e9 - age))
    assert newest_checkpoint(tmp_path, "resume_from_checkpoint").name == "last-step.ckpt"
    assert newest_checkpoint(tmp_path / "run-ep=2.ckpt", "resume_from_checkpoint").name == "run-ep=2.ckpt"
    with pytest.raises(ValueError, match="resume_from_checkpoint"):
        newest_checkpoint(tmp_path / "missing", "resume_from_checkpoint")
    with pytest.raises(ValueError, match=r"checkpoint\.every_n_steps = -1"):
        StepCheckpointer(None, -1)
