"""The framework-free step (solo_semppl.step) and its base losses (losses/contrastive.py):
brute-force loop references, solo-learn's own loss functions, and the weights in one place."""
import math

import pytest
import torch

from conftest import needs_solo
from solo_semppl.losses import byol_loss, nt_xent_loss, relic_loss, sample_negatives
from solo_semppl.semantic import LabelledQueue
from solo_semppl.step import StepConfig, StepInputs, loss_weights, semppl_step


def nt_xent_loop(z, keys, temperature, mask=None):
    views, batch = z.shape[:2]
    z = torch.nn.functional.normalize(z, dim=-1)
    keep = [bool(mask[i]) if mask is not None else True for i in range(batch)]
    pairs = [(a, i) for a in range(views) for i in range(batch) if keep[i]]
    total, anchors = 0.0, 0
    for a, i in pairs:
        pos = sum(math.exp(float(z[a, i] @ z[b, j]) / temperature) for b, j in pairs
                  if (b, j) != (a, i) and keys[j] == keys[i])
        every = sum(math.exp(float(z[a, i] @ z[b, j]) / temperature) for b, j in pairs if (b, j) != (a, i))
        if pos > 0:
            total, anchors = total - math.log(pos / every), anchors + 1
    return total / max(anchors, 1)


@pytest.mark.parametrize("views,batch,with_mask", [(2, 6, False), (3, 5, True), (1, 8, True)])
def test_nt_xent_matches_loop_reference(views, batch, with_mask):
    g = torch.Generator().manual_seed(views * 10 + batch)
    z = torch.randn(views, batch, 4, generator=g, dtype=torch.float64)
    keys = torch.randint(0, 3, (batch,), generator=g)
    mask = torch.rand(batch, generator=g) < 0.7 if with_mask else None
    expected = nt_xent_loop(z, keys, 0.3, mask)
    assert nt_xent_loss(z, keys, 0.3, mask).item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_nt_xent_with_no_positive_is_exact_zero_with_a_graph():
    z = torch.randn(1, 4, 3, requires_grad=True)
    loss = nt_xent_loss(z, torch.arange(4), 0.2)
    loss.backward()
    assert loss.item() == 0 and torch.equal(z.grad, torch.zeros_like(z))


@needs_solo
def test_nt_xent_over_ids_is_solo_learns_simclr_loss():
    from solo.losses.simclr import simclr_loss_func

    z = torch.randn(4, 8, 5, dtype=torch.float64)
    ids = torch.arange(8)
    expected = simclr_loss_func(torch.cat(list(z)), ids.repeat(4), 0.2)
    assert nt_xent_loss(z, ids, 0.2).item() == pytest.approx(expected.item(), rel=1e-9)


def test_byol_loss_matches_loop_reference():
    online, target = torch.randn(5, 6, 4, dtype=torch.float64), torch.randn(2, 6, 4, dtype=torch.float64)
    cos = torch.nn.functional.cosine_similarity
    expected = sum(2 - 2 * cos(online[a], target[b], dim=-1).mean() for b in range(2) for a in range(5) if a != b)
    assert byol_loss(online, target).item() == pytest.approx(expected.item(), rel=1e-9)


def inputs_of(batch=12, dim=6, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randint(0, classes, (batch,), generator=g)
    visible = torch.where(torch.arange(batch) % 3 == 0, hidden, torch.full_like(hidden, -1))
    return StepInputs(
        online=torch.randn(4, batch, dim, generator=g, requires_grad=True),
        target=torch.randn(2, batch, dim, generator=g),
        ids=torch.arange(batch), visible=visible, hidden=hidden,
        projections=torch.randn(4, batch, dim, generator=g, requires_grad=True),
    )


def generators(stream):
    return torch.Generator().manual_seed(100 + stream)


def filled_queue(inputs, classes=3):
    queue = LabelledQueue(2, 16, inputs.online.size(-1))
    queue.enqueue(inputs.target, inputs.hidden, inputs.ids)  # every image as if labelled
    return queue


def test_relic_step_is_the_weighted_relic_loss():
    inputs, config = inputs_of(), StepConfig(num_classes=3, num_negatives=5)
    result = semppl_step(inputs, config, generators)
    negatives = sample_negatives(12, 5, generators(0))
    contrastive, invariance = relic_loss(inputs.online, inputs.target, negatives, 0.2)
    assert set(result.terms) == {"relic_contrastive", "relic_invariance"} and not result.telemetry
    assert torch.allclose(result.loss, 0.3 * contrastive + 5.0 * invariance)


@pytest.mark.parametrize("base_loss", ["relic", "simclr", "byol"])
def test_semppl_step_loss_is_the_sum_of_weighted_terms(base_loss):
    inputs = inputs_of()
    config = StepConfig(num_classes=3, num_negatives=5, num_semantic_positives=2, base_loss=base_loss)
    result = semppl_step(inputs, config, generators, filled_queue(inputs))
    weights = loss_weights(config)
    assert any(name.startswith("sempos_") for name in result.terms)
    assert torch.allclose(result.loss, sum(weights[k] * v for k, v in result.terms.items()))
    assert {"pl_accuracy", "queue_fill", "sempos_valid_fraction"} <= set(result.telemetry)
    result.loss.backward()  # the graph reaches the online embeddings
    grad = inputs.projections.grad if base_loss == "simclr" else inputs.online.grad
    assert grad is not None and grad.abs().sum() > 0


def test_semantic_off_keeps_the_labeller_but_zeroes_the_semantic_terms():
    inputs = inputs_of()
    config = StepConfig(num_classes=3, num_negatives=5, num_semantic_positives=2)
    on = semppl_step(inputs, config, generators, filled_queue(inputs))
    off = semppl_step(inputs, config, generators, filled_queue(inputs), semantic_on=False)
    assert on.terms["sempos_contrastive"] > 0 and off.terms["sempos_contrastive"] == 0
    assert torch.equal(on.telemetry["pl_accuracy"], off.telemetry["pl_accuracy"])
    assert off.telemetry["sempos_valid_fraction"] == 0


def test_weights_change_the_loss_and_come_from_method_kwargs():
    inputs = inputs_of()
    kwargs = {"contrastive_weight": 0.3, "sempos_weight": 0.2, "num_semantic_positives": 2, "num_negatives": 5,
              "queue_batches": 20.0}  # keys the step does not use are ignored
    base = StepConfig.from_kwargs(kwargs, num_classes=3)
    heavier = StepConfig.from_kwargs({**kwargs, "sempos_weight": 2.0}, num_classes=3)
    assert base.sempos_weight == 0.2 and heavier.sempos_weight == 2.0
    a = semppl_step(inputs, base, generators, filled_queue(inputs)).loss
    b = semppl_step(inputs, heavier, generators, filled_queue(inputs)).loss
    assert not torch.allclose(a, b)
