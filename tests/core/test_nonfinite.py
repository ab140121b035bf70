"""NaN/inf losses: the step is skipped (no optimiser, EMA or queue update) and counted; after
``method_kwargs.max_nonfinite_steps`` bad steps in a row training stops with a clear error."""
import pytest
import torch

from conftest import HAS_SOLO
from solo_semppl.nonfinite import NonFiniteGuard, NonFiniteLossError

needs_solo = pytest.mark.skipif(not HAS_SOLO, reason="solo-learn is not installed (pip install 'solo-semppl[solo]', see README)")


def test_guard_skips_bad_steps_and_a_finite_step_resets_the_run():
    guard = NonFiniteGuard(max_consecutive=3)
    assert [guard.skip(f) for f in (True, False, False, True, False, False)] == [False, True, True, False, True, True]
    assert guard.total == 4 and guard.consecutive == 2
    restored = NonFiniteGuard(3)
    restored.load_state_dict(guard.state_dict())
    with pytest.raises(NonFiniteLossError):
        restored.skip(False)


@pytest.mark.parametrize("limit", [1, 4])
def test_guard_raises_on_the_nth_consecutive_bad_step_naming_the_key_and_what_to_check(limit):
    guard = NonFiniteGuard(limit)
    for _ in range(limit - 1):
        assert guard.skip(False)
    with pytest.raises(NonFiniteLossError, match=rf"max_nonfinite_steps = {limit}") as err:
        guard.skip(False)
    for hint in ("optimizer.lr", "method_kwargs.temperature", "precision", "data.train_path"):
        assert hint in str(err.value)


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_guard_rejects_a_limit_below_zero(bad):
    with pytest.raises(ValueError, match="method_kwargs.max_nonfinite_steps"):
        NonFiniteGuard(bad)


def test_zero_turns_the_guard_off():
    assert NonFiniteGuard(1).enabled and not NonFiniteGuard(0).enabled


@needs_solo
def test_the_guard_is_the_steps_only_host_read(tmp_path):
    """With the guard on, the XLA-ready step reads the loss on the host (tests/host_sync.py)."""
    from solo_fixtures import CropsDataset, make_image_folder, tiny_cfg
    from solo.methods import METHODS
    from torchvision.datasets import ImageFolder
    from host_sync import HostSync, no_host_sync

    folder = make_image_folder(tmp_path)
    cfg = tiny_cfg("semppl", folder, ["semi_supervised.fraction=0.5", "+method_kwargs.knn_backend=torch"])
    model = METHODS["semppl"](cfg)
    batch = next(iter(torch.utils.data.DataLoader(CropsDataset(ImageFolder(str(folder)).targets), batch_size=8)))
    with pytest.raises(HostSync), no_host_sync():
        model.training_step(batch, 0)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from solo_fixtures import make_image_folder

    return make_image_folder(tmp_path_factory.mktemp("tiny"))


def nan_at(model, steps, monkeypatch):
    """Makes the loss NaN when ``model.global_step`` is in ``steps`` (None: always)."""
    original = model.finish_step

    def poisoned(ssl_loss, class_loss, logged):
        if steps is None or model.global_step in steps:
            ssl_loss = ssl_loss * float("nan")
        return original(ssl_loss, class_loss, logged)

    monkeypatch.setattr(model, "finish_step", poisoned)


def train(model, steps):
    """``steps`` CPU steps; returns the model's state (parameters, EMA weights, queue) at the start
    of every batch and at the end."""
    import lightning.pytorch as pl

    from solo_fixtures import dataset_of

    states = []

    class Snapshots(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            states.append({k: v.detach().clone() for k, v in pl_module.state_dict().items()})

        def on_train_end(self, trainer, pl_module):
            self.on_train_batch_start(trainer, pl_module, None, None)

    loader = torch.utils.data.DataLoader(dataset_of(model), batch_size=8, shuffle=False, drop_last=True)
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_steps=steps, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[Snapshots()],
    )
    trainer.fit(model, loader)
    return states


def changed(before, after, prefix):
    return any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix))


@needs_solo
def test_a_nan_step_changes_no_weight_no_ema_and_no_queue_and_is_logged(folder, monkeypatch):
    from solo_fixtures import build

    model = build("semppl", folder)
    nan_at(model, {1}, monkeypatch)
    s0, s1, s2, s3 = train(model, steps=3)
    for prefix in ("backbone.", "momentum_backbone.", "projector.", "queue."):
        assert not changed(s1, s2, prefix), prefix
        assert changed(s0, s1, prefix) and changed(s2, s3, prefix), prefix
    assert float(model.trainer.callback_metrics["train_nonfinite_steps"]) == 1
    assert model.nonfinite.consecutive == 0


@needs_solo
@pytest.mark.parametrize("limit", [2, 3])
@pytest.mark.slow
def test_training_stops_after_max_nonfinite_steps_bad_steps(folder, monkeypatch, limit):
    from solo_fixtures import build

    model = build("relic", folder, [f"++method_kwargs.max_nonfinite_steps={limit}"])
    nan_at(model, None, monkeypatch)
    calls = []
    step = model.training_step
    monkeypatch.setattr(model, "training_step", lambda *a: calls.append(1) or step(*a))
    with pytest.raises(NonFiniteLossError, match=f"max_nonfinite_steps = {limit}"):
        train(model, steps=10)
    assert len(calls) == limit


@needs_solo
def test_max_nonfinite_steps_is_validated_before_training(folder):
    from solo_fixtures import build

    with pytest.raises(ValueError, match=r"method_kwargs\.max_nonfinite_steps = -1: expected an integer >= 0"):
        build("semppl", folder, ["++method_kwargs.max_nonfinite_steps=-1"])


def agreement_worker(rank, port, out):
    import os

    import torch.distributed as dist

    from solo_semppl.nonfinite import finite_on_all_ranks

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    own = torch.tensor(float("nan") if rank == 1 else 1.0)
    torch.save([finite_on_all_ranks(own), finite_on_all_ranks(torch.tensor(1.0))], f"{out}.{rank}")
    dist.destroy_process_group()


@pytest.mark.slow
def test_ranks_agree_to_skip_when_one_rank_has_a_nan_loss(tmp_path):
    import os

    import torch.multiprocessing as mp

    port = 29700 + os.getpid() % 200
    mp.spawn(agreement_worker, args=(port, str(tmp_path / "rank")), nprocs=2, join=True)
    assert [torch.load(tmp_path / f"rank.{r}") for r in (0, 1)] == [[False, True], [False, True]]


def test_norm_statistics_put_back_what_a_forward_changed_in_every_batch_norm_layer():
    from solo_semppl.nonfinite import NormStatistics

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.LazyLinear(5), torch.nn.BatchNorm1d(5))
    model(torch.randn(4, 3, 6, 6))  # materialise the lazy layer
    stats = NormStatistics()
    for _ in range(2):  # the second save reuses the buffers it found and its own copies
        stats.save(model)
        before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k}
        model(torch.randn(4, 3, 6, 6) * 3 + 1)
        assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items() if k in before)
        stats.restore()
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items() if k in before)
    assert len(stats.buffers) == 6
