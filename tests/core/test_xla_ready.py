"""The training step is XLA-friendly: no host sync and no data-dependent shape, checked on CPU
(no torch-xla) by running it inside ``no_host_sync()``; the real XLA check is
``scripts/xla/check_xla.py``."""
import sys

import pytest
import torch

from conftest import REPO, needs_solo
from host_sync import HostSync, no_host_sync

sys.path.insert(0, str(REPO / "scripts" / "xla"))
import core_step  # noqa: E402


@pytest.mark.parametrize("offence", [
    lambda t: t.sum().item(),
    lambda t: bool(t.sum() > 0),
    lambda t: t.nonzero(),
    lambda t: torch.where(t > 0),
    lambda t: t[t > 0],
    lambda t: t.tolist(),
    lambda t: int(t.argmax()),
], ids=["item", "bool", "nonzero", "where1", "mask_index", "tolist", "int"])
def test_guard_catches_each_kind_of_sync(offence):
    with no_host_sync(), pytest.raises(HostSync):
        offence(torch.randn(5))


def test_guard_restores_torch():
    with no_host_sync():
        pass
    t = torch.tensor([1.0, -1.0])
    assert t[t > 0].tolist() == [1.0] and torch.where(t > 0)[0].item() == 0


def test_core_semppl_step_has_no_host_sync():
    model = core_step.CoreSemPPL()
    optimizer = model.optimizer()
    batches = core_step.make_batches(3)
    with no_host_sync():
        outs = [core_step.training_step(model, optimizer, batch, step) for step, batch in enumerate(batches)]
    assert model.queue.valid.any() and torch.isfinite(torch.stack([o["loss"] for o in outs])).all()
    assert outs[-1]["sempos_contrastive"] > 0  # the queue fed semantic positives by the last step


@needs_solo
def test_semppl_training_step_and_lars_step_have_no_host_sync(tmp_path):
    from solo_fixtures import CropsDataset, make_image_folder, tiny_cfg
    from solo.methods import METHODS
    from torchvision.datasets import ImageFolder

    from solo_semppl.lars import LARS

    folder = make_image_folder(tmp_path)
    cfg = tiny_cfg("semppl", folder, ["semi_supervised.fraction=0.5", "optimizer.kwargs.clip_lr=True",
                                         "+method_kwargs.knn_backend=torch",
                                         "+method_kwargs.max_nonfinite_steps=0"])  # as semppl_tpu.yaml
    torch.manual_seed(0)
    model = METHODS["semppl"](cfg)
    optimizer = LARS(model.learnable_params, lr=0.1, weight_decay=1e-5, **cfg.optimizer.kwargs)
    data = CropsDataset(ImageFolder(str(folder)).targets)
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0))
    for batch_idx, batch in zip(range(3), loader):
        with no_host_sync():
            loss = model.training_step(batch, batch_idx)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for pair in model.momentum_pairs:
                model.momentum_updater.update(*pair)
    assert model.queue.valid.any()
