"""The sync-free LARS (``solo_semppl.lars``) against solo-learn's LARS over several steps, its
step under the host-sync guard, and its selection by ``optimizer.name: lars`` for our methods."""
import pytest
import torch

from conftest import needs_solo
from host_sync import HostSync, no_host_sync
from solo_semppl.lars import LARS

SETTINGS = [
    dict(momentum=0.9, weight_decay=1e-4, eta=0.02, clip_lr=True, exclude_bias_n_norm=True),
    dict(momentum=0.9, weight_decay=1e-4, eta=0.02, clip_lr=False, exclude_bias_n_norm=False),
    dict(momentum=0.9, weight_decay=0.0, eta=1e-3, clip_lr=True, exclude_bias_n_norm=False, nesterov=True),
    dict(momentum=0.0, weight_decay=1e-2, eta=0.5, clip_lr=True, exclude_bias_n_norm=True),
    dict(momentum=0.9, dampening=0.1, weight_decay=1e-4, eta=0.02, clip_lr=False, exclude_bias_n_norm=True),
]


def tiny_model() -> torch.nn.Module:
    """Linear + BN + Linear, plus a zero-initialised weight (||p|| = 0 on the first step) and a
    weight whose gradient is always zero (||g|| = 0): both take the plain-gradient branch."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.BatchNorm1d(5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    model.zero_init = torch.nn.Parameter(torch.zeros(3, 3))
    model.no_grad = torch.nn.Parameter(torch.randn(2, 2))
    return model


def train(optimizer_class, settings, steps: int = 6, guard=None):
    model = tiny_model()
    optimizer = optimizer_class(model.parameters(), lr=0.5, **settings)
    g = torch.Generator().manual_seed(1)
    for step in range(steps):
        x, y = torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x) @ (torch.eye(3) + model.zero_init), y)
        optimizer.zero_grad()
        (loss + 0 * model.no_grad.sum()).backward()
        for group in optimizer.param_groups:
            group["lr"] = 0.5 / (1 + step)  # a scheduler changes lr between steps
        with guard() if guard else torch.no_grad():
            optimizer.step()
    return model, optimizer


def test_one_step_by_hand_including_the_zero_norm_branch():
    p, zero = torch.nn.Parameter(torch.tensor([3.0, 4.0])[None]), torch.nn.Parameter(torch.zeros(1, 2))
    p.grad, zero.grad = torch.tensor([[0.6, 0.8]]), torch.tensor([[1.0, 2.0]])
    LARS([p, zero], lr=0.5, weight_decay=0.1, eta=0.01, eps=0.0).step()
    trust = 0.01 * 5.0 / (1.0 + 0.1 * 5.0)
    expected = torch.tensor([[3.0, 4.0]]) - 0.5 * trust * (torch.tensor([[0.6, 0.8]]) + 0.1 * torch.tensor([[3.0, 4.0]]))
    assert torch.allclose(p.detach(), expected)
    assert torch.equal(zero.detach(), torch.tensor([[-0.5, -1.0]]))  # plain gradient, no weight decay


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_step_has_no_host_sync(settings):
    model, _ = train(LARS, settings, guard=no_host_sync)
    assert all(torch.isfinite(p).all() for p in model.parameters())


@needs_solo
@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_matches_solo_learn_lars_over_several_steps(settings):
    from solo.utils.lars import LARS as SoloLARS

    ours, our_opt = train(LARS, settings)
    theirs, their_opt = train(SoloLARS, settings)
    start = tiny_model()
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7), name
    assert not torch.equal(ours[3].weight, start[3].weight) and not torch.equal(ours.zero_init, start.zero_init)
    assert torch.equal(ours.no_grad, start.no_grad)  # ||g|| = 0: plain (zero) gradient, no weight decay
    for a, b in zip(our_opt.state.values(), their_opt.state.values()):
        assert torch.allclose(a["momentum_buffer"], b["momentum_buffer"], rtol=1e-6, atol=1e-7)


@needs_solo
def test_solo_learn_lars_syncs_with_the_host():
    from solo.utils.lars import LARS as SoloLARS

    with pytest.raises(HostSync, match="__bool__"):
        train(SoloLARS, SETTINGS[0], steps=1, guard=no_host_sync)


@needs_solo
def test_lars_in_relic_and_semppl_is_the_sync_free_one_and_solo_learn_keeps_its_own():
    from solo.methods.base import BaseMethod
    from solo.utils.lars import LARS as SoloLARS

    from solo_semppl.methods import METHODS

    for method in METHODS.values():
        assert method._OPTIMIZERS["lars"] is LARS
        assert {k: v for k, v in method._OPTIMIZERS.items() if k != "lars"} == {
            k: v for k, v in BaseMethod._OPTIMIZERS.items() if k != "lars"}
    assert BaseMethod._OPTIMIZERS["lars"] is SoloLARS
