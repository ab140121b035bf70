"""DDP on CPU (2 gloo processes): a SemPPL step on 2 ranks x B/2 equals a step on 1 rank x B in
loss, DDP-averaged gradients and queue content (needs solo-learn). The model runs in eval mode
so that batch-norm uses the same statistics on both sides; negatives and positives come from
generators seeded by (seed, step), the same on every rank."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from conftest import needs_solo

pytestmark = needs_solo


def make_model(folder):
    from solo.methods import METHODS

    from solo_fixtures import tiny_cfg

    cfg = tiny_cfg("semppl", folder, ["semi_supervised.fraction=0.5", "optimizer.batch_size=8"])
    torch.manual_seed(0)
    model = METHODS["semppl"](cfg).eval()
    g = torch.Generator().manual_seed(1)  # a queue with entries, the same everywhere
    labels = torch.randint(0, 3, (8,), generator=g)
    model.queue.enqueue(torch.randn(4, 8, 16, generator=g), labels, torch.arange(100, 108))
    return model


def batch(model):
    from solo_fixtures import CropsDataset

    data = CropsDataset([i % 3 for i in range(24)])
    items = [data[i] for i in range(0, 24, 3)]  # 8 images
    indexes = torch.tensor([it[0] for it in items])
    crops = [torch.stack([it[1][v] for it in items]) for v in range(6)]
    return indexes, crops, torch.tensor([it[2] for it in items])


def step(model, indexes, crops, targets):
    """The SemPPL loss (the online probe's cross-entropy is per rank by design, as in solo-learn),
    the backbone gradients and the queue after one training step."""
    logged = {}
    model.epoch_means.add = logged.update  # the step's logged values
    loss = model.training_step([indexes, crops, targets], 0)
    model.zero_grad()
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.backbone.parameters()])
    return logged["train_ssl_loss"].detach(), grads, {k: v.clone() for k, v in model.queue.state_dict().items()}


def worker(rank, folder, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    model = make_model(folder)
    indexes, crops, targets = batch(model)
    half = slice(rank * 4, rank * 4 + 4)
    loss, grads, queue = step(model, indexes[half], [c[half] for c in crops], targets[half])
    dist.all_reduce(grads)
    torch.save({"loss": loss, "grads": grads / 2, "queue": queue}, f"{out}.{rank}")
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_with_half_batches_match_one_rank(tmp_path):
    from solo_fixtures import make_image_folder

    folder = make_image_folder(tmp_path / "data")
    model = make_model(folder)
    loss, grads, queue = step(model, *batch(model))
    port = 29500 + os.getpid() % 1000
    mp.spawn(worker, args=(folder, port, str(tmp_path / "rank")), nprocs=2, join=True)
    for rank in range(2):
        got = torch.load(tmp_path / f"rank.{rank}")
        assert torch.allclose(got["loss"], loss, atol=1e-5)
        assert torch.allclose(got["grads"], grads, atol=1e-5, rtol=1e-4)
        for key, value in queue.items():
            assert torch.allclose(got["queue"][key].float(), value.float(), atol=1e-6), key
    labelled = int(model.labelled_mask[batch(model)[0]].sum())
    assert labelled > 0 and int(queue["ptr"]) == (8 + labelled) % queue["labels"].size(1)
