"""ReLICv2 and semantic-positive losses against explicit-loop references."""
import math

import pytest
import torch

from solo_semppl.losses import relic_loss, sample_negatives, semantic_positive_loss, semantic_regression_loss


def unit(v):
    return v / v.norm()


def softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [x / sum(e) for x in e]


def kl(q, p):
    return sum(qi * (math.log(qi) - math.log(pi)) for qi, pi in zip(q, p))


def reference(online, positives, valid, target, negatives, tau, kl_form):
    """Explicit loops over (a, b, p, i) and candidates, in float64 Python arithmetic."""
    v_on, batch, _ = online.shape
    v_t, n_pos = positives.shape[:2]
    o = [[unit(online[a, i].double()) for i in range(batch)] for a in range(v_on)]
    t = [[unit(target[b, i].double()) for i in range(batch)] for b in range(v_t)]
    z = [[[unit(positives[b, p, i].double()) for i in range(batch)] for p in range(n_pos)] for b in range(v_t)]

    def probs(a, b, p, i):
        cands = [z[b][p][i]] + [t[b][int(c)] for c in negatives[i]]
        return softmax([float(o[a][i] @ c) / tau for c in cands])

    contrastive = invariance = 0.0
    count = 0
    for a in range(v_on):
        for b in range(v_t):
            for p in range(n_pos):
                for i in range(batch):
                    if not valid[b, p, i]:
                        continue
                    count += 1
                    pab = probs(a, b, p, i)
                    contrastive -= math.log(pab[0])
                    if kl_form == "k1":
                        online_cands = [o[a][i]] + [o[a][int(c)] for c in negatives[i]]
                        q = softmax([float(z[b][p][i] @ c) / tau for c in online_cands])
                        invariance += kl(q, pab)
                    elif a < v_t and valid[a, p, i]:
                        invariance += kl(probs(b, a, p, i), pab)
    count = max(count, 1)
    return contrastive / count, invariance / count


SHAPES = [(2, 2, 5, 3, 1), (6, 4, 7, 4, 3), (3, 2, 4, 8, 2)]  # V_on, V_t, B, n, D-ish


@pytest.mark.parametrize("v_on, v_t, batch, n, p", SHAPES)
@pytest.mark.parametrize("kl_form", ["k1", "k2"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_relic_matches_loop_reference(v_on, v_t, batch, n, p, kl_form, dtype):
    g = torch.Generator().manual_seed(v_on * 100 + batch)
    online = torch.randn(v_on, batch, 6, generator=g, dtype=dtype)
    target = torch.randn(v_t, batch, 6, generator=g, dtype=dtype)
    negatives = sample_negatives(batch, min(n, batch - 1), g)
    ones = torch.ones(v_t, 1, batch, dtype=torch.bool)
    got = relic_loss(online, target, negatives, 0.2, kl_form)
    want = reference(online, target[:, None], ones, target, negatives, 0.2, kl_form)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    assert [float(x) for x in got] == pytest.approx(want, rel=tol, abs=tol)


@pytest.mark.parametrize("v_on, v_t, batch, n, p", SHAPES)
@pytest.mark.parametrize("kl_form", ["k1", "k2"])
def test_semantic_matches_loop_reference(v_on, v_t, batch, n, p, kl_form):
    g = torch.Generator().manual_seed(7 + p)
    online, target = torch.randn(v_on, batch, 6, generator=g), torch.randn(v_t, batch, 6, generator=g)
    positives = torch.randn(v_t, p, batch, 6, generator=g)
    valid = torch.rand(v_t, p, batch, generator=g) < 0.6
    negatives = sample_negatives(batch, min(n, batch - 1), g)
    got = semantic_positive_loss(online, positives, valid, target, negatives, 0.3, kl_form)
    want = reference(online, positives, valid, target, negatives, 0.3, kl_form)
    assert [float(x) for x in got] == pytest.approx(want, rel=1e-4, abs=1e-5)


def test_semantic_with_own_target_as_every_positive_equals_relic():
    g = torch.Generator().manual_seed(3)
    online, target = torch.randn(6, 9, 8, generator=g), torch.randn(4, 9, 8, generator=g)
    negatives = sample_negatives(9, 5, g)
    positives = target[:, None].expand(-1, 3, -1, -1)
    valid = torch.ones(4, 3, 9, dtype=torch.bool)
    for form in ("k1", "k2"):
        sem = semantic_positive_loss(online, positives, valid, target, negatives, 0.2, form)
        rel = relic_loss(online, target, negatives, 0.2, form)
        assert torch.allclose(torch.stack(sem), torch.stack(rel), atol=1e-6)


def test_nothing_valid_gives_exact_zero_and_a_working_backward():
    online = torch.randn(3, 4, 5, requires_grad=True)
    target, positives = torch.randn(2, 4, 5), torch.randn(2, 3, 4, 5)
    valid = torch.zeros(2, 3, 4, dtype=torch.bool)
    c, i = semantic_positive_loss(online, positives, valid, target, sample_negatives(4, 3))
    assert c.item() == 0.0 and i.item() == 0.0
    (c + i).backward()
    assert torch.isfinite(online.grad).all() and float(online.grad.abs().sum()) == 0.0
    r = semantic_regression_loss(online, positives, valid)
    assert float(r) == 0.0


def test_masking_removes_exactly_that_terms_contribution():
    g = torch.Generator().manual_seed(5)
    online, target = torch.randn(2, 4, 5, generator=g), torch.randn(2, 4, 5, generator=g)
    positives = torch.randn(2, 1, 4, 5, generator=g)
    negatives = sample_negatives(4, 2, g)
    one = torch.zeros(2, 1, 4, dtype=torch.bool)
    one[1, 0, 2] = True
    c_one, _ = semantic_positive_loss(online, positives, one, target, negatives)
    # hand computation for that single term, averaged over the 2 online views
    o = torch.nn.functional.normalize(online, dim=-1)
    z = torch.nn.functional.normalize(positives[1, 0, 2], dim=-1)
    t = torch.nn.functional.normalize(target[1], dim=-1)
    hand = 0.0
    for a in range(2):
        logits = torch.stack([o[a, 2] @ z] + [o[a, 2] @ t[c] for c in negatives[2]]) / 0.2
        hand += -torch.log_softmax(logits, 0)[0]
    assert float(c_one) == pytest.approx(float(hand) / 2, rel=1e-5)


def test_gradcheck_and_stop_gradients():
    g = torch.Generator().manual_seed(11)
    online = torch.randn(3, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    positives = torch.randn(2, 2, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    valid = torch.rand(2, 2, 4, generator=g) < 0.7
    negatives = sample_negatives(4, 2, g)
    # the contrastive term has no stop-gradient inside: its analytic gradient is the numeric one
    # (the invariance terms detach a function of the online input; see the test below)
    fn = lambda o: semantic_positive_loss(o, positives, valid, target, negatives, 0.5)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (online,))
    for form in ("k1", "k2"):
        c, i = semantic_positive_loss(online, positives, valid, target, negatives, 0.5, form)
        (c + i).backward()
        assert target.grad is None and positives.grad is None


def test_invariance_target_distribution_is_stop_gradient():
    """The gradient of the K1 invariance equals that of KL with q computed from detached inputs."""
    g = torch.Generator().manual_seed(2)
    online = torch.randn(2, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 5, 4, generator=g, dtype=torch.float64)
    negatives = sample_negatives(5, 3, g)
    _, inv = relic_loss(online, target, negatives, 0.2, "k1")
    (grad,) = torch.autograd.grad(inv, online)
    o = torch.nn.functional.normalize(online, dim=-1)
    od = o.detach()
    t = torch.nn.functional.normalize(target, dim=-1)
    total = 0
    for a in range(2):
        for b in range(2):
            for i in range(5):
                cands = [i] + negatives[i].tolist()
                p = torch.log_softmax(torch.stack([o[a, i] @ t[b, c] for c in cands]) / 0.2, 0)
                q = torch.softmax(torch.stack([t[b, i] @ od[a, c] for c in cands]) / 0.2, 0)
                total = total + (q * (q.log() - p)).sum()
    (want,) = torch.autograd.grad(total / 20, online)
    assert torch.allclose(grad, want, atol=1e-10)


def test_switches_change_the_value():
    g = torch.Generator().manual_seed(4)
    online, target = torch.randn(6, 16, 8, generator=g), torch.randn(4, 16, 8, generator=g)
    negatives = sample_negatives(16, 10, g)
    _, k1 = relic_loss(online, target, negatives, 0.2, "k1")
    _, k2 = relic_loss(online, target, negatives, 0.2, "k2")
    assert abs(float(k1) - float(k2)) > 1e-3
    c_a, _ = relic_loss(online, target, negatives, 0.2)
    c_b, _ = relic_loss(online, target, negatives, 0.5)
    assert abs(float(c_a) - float(c_b)) > 1e-3


def test_regression_matches_loop_reference():
    g = torch.Generator().manual_seed(8)
    online, positives = torch.randn(3, 4, 5, generator=g), torch.randn(2, 2, 4, 5, generator=g)
    valid = torch.rand(2, 2, 4, generator=g) < 0.5
    terms = [2 - 2 * float(unit(online[a, i]) @ unit(positives[b, p, i]))
             for a in range(3) for b in range(2) for p in range(2) for i in range(4) if valid[b, p, i]]
    assert float(semantic_regression_loss(online, positives, valid)) == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_sample_negatives_distinct_in_range_not_self_uniform_and_seeded():
    draw = sample_negatives(12, 11, torch.Generator().manual_seed(0))
    assert draw.shape == (12, 11)
    for i, row in enumerate(draw.tolist()):
        assert len(set(row)) == 11 and i not in row and all(0 <= c < 12 for c in row)
    counts = torch.zeros(8, 8)
    for s in range(300):
        d = sample_negatives(8, 2, torch.Generator().manual_seed(s))
        counts[torch.arange(8)[:, None], d] += 1
    off = counts[~torch.eye(8, dtype=torch.bool)]
    assert off.min() > 300 * 2 / 7 * 0.6 and off.max() < 300 * 2 / 7 * 1.4
    a = sample_negatives(50, 10, torch.Generator().manual_seed(9))
    assert torch.equal(a, sample_negatives(50, 10, torch.Generator().manual_seed(9)))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: sample_negatives(4, 4), "num_negatives"),
        (lambda: sample_negatives(4, -1), "num_negatives"),
        (lambda: relic_loss(torch.randn(2, 4, 3), torch.randn(3, 4, 3), sample_negatives(4, 2)), "target"),
        (lambda: relic_loss(torch.randn(2, 4, 3), torch.randn(2, 4, 3), sample_negatives(4, 2).int()), "negatives"),
        (lambda: relic_loss(torch.randn(2, 4, 3), torch.randn(2, 4, 3), sample_negatives(4, 2), 0.0), "temperature"),
        (lambda: relic_loss(torch.randn(2, 4, 3), torch.randn(2, 4, 3), sample_negatives(4, 2), 0.2, "k3"), "kl_form"),
        (lambda: semantic_positive_loss(torch.randn(2, 4, 3), torch.randn(2, 1, 4, 3), torch.ones(2, 1, 4),
                                        torch.randn(2, 4, 3), sample_negatives(4, 2)), "valid"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def distillation_loop_reference(student, teacher, labels, temperature, label_weight):
    """SimCLRv2's distillation loss with explicit loops over rows and classes."""
    rows, classes = student.shape
    soft, hard, visible = 0.0, 0.0, 0
    for i in range(rows):
        t = [math.exp(teacher[i, c].item() / temperature) for c in range(classes)]
        s = [math.exp(student[i, c].item() / temperature) for c in range(classes)]
        soft -= sum(t[c] / sum(t) * math.log(s[c] / sum(s)) for c in range(classes)) / rows
        if labels[i] >= 0:
            e = [math.exp(student[i, c].item()) for c in range(classes)]
            hard -= math.log(e[labels[i]] / sum(e))
            visible += 1
    return soft + (label_weight * hard / visible if visible and label_weight else 0.0)


@pytest.mark.parametrize("temperature,label_weight,labels", [
    (1.0, 1.0, [0, -1, 2, -1, 1]), (0.5, 0.3, [-1, -1, 2, 2, -1]), (2.0, 1.0, [-1] * 5), (1.0, 0.0, [0, 1, 2, 0, 1]),
])
def test_distillation_matches_loop_reference(temperature, label_weight, labels):
    from solo_semppl.losses import distillation_loss

    torch.manual_seed(0)
    student, teacher = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    got = distillation_loss(student, teacher, torch.tensor(labels), temperature, label_weight)
    assert math.isclose(got.item(), distillation_loop_reference(student, teacher, labels, temperature, label_weight), rel_tol=1e-5)


def test_distillation_sends_no_gradient_to_the_teacher_and_ignores_hidden_labels():
    from solo_semppl.losses import distillation_loss

    student, teacher = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    distillation_loss(student, teacher, torch.tensor([0, -1, -1, 1])).backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0
    same = distillation_loss(student, teacher, torch.tensor([0, -1, -1, 1]))
    assert same.item() != distillation_loss(student, teacher, torch.tensor([0, 2, -1, 1])).item()


def paws_loop_reference(anchor_views, anchor_supports, target_views, target_supports, labels, tau, temp):
    """PAWS' loss with explicit loops: snn, sharpening, the other large views' targets."""
    V, B, _ = anchor_views.shape
    L, C, S = target_views.shape[0], labels.shape[1], labels.shape[0]

    def cos(a, b):
        return (a @ b).item() / (a.norm().item() * b.norm().item())

    def snn(q, supports):
        w = [math.exp(cos(q, supports[s]) / tau) for s in range(S)]
        return [sum(w[s] / sum(w) * labels[s, c].item() for s in range(S)) for c in range(C)]

    def sharp(p):
        powered = [x ** (1 / temp) for x in p]
        return [x / sum(powered) for x in powered]

    ce, mean = 0.0, [0.0] * C
    for v in range(V):
        for i in range(B):
            p = snn(anchor_views[v, i], anchor_supports)
            sources = [u for u in range(L) if u != v] if v < L else list(range(L))
            t = [sum(sharp(snn(target_views[u, i], target_supports))[c] for u in sources) / len(sources) for c in range(C)]
            t = [x if x >= 1e-4 else 0.0 for x in t]
            ce -= sum(t[c] * math.log(p[c]) for c in range(C) if t[c] > 0) / (V * B)
            mean = [m + x / (V * B) for m, x in zip(mean, sharp(p))]
    return ce, math.log(C) + sum(m * math.log(m) for m in mean)


@pytest.mark.parametrize("views,large,batch,supports,classes", [(2, 2, 3, 4, 2), (6, 4, 2, 6, 3), (3, 2, 4, 3, 3)])
def test_paws_matches_loop_reference(views, large, batch, supports, classes):
    from solo_semppl.losses.paws import paws_loss, smoothed_one_hot

    torch.manual_seed(views + batch)
    dim = 5
    anchor_views, target_views = torch.randn(views, batch, dim, dtype=torch.float64), torch.randn(large, batch, dim, dtype=torch.float64)
    anchor_supports, target_supports = torch.randn(supports, dim, dtype=torch.float64), torch.randn(supports, dim, dtype=torch.float64)
    labels = smoothed_one_hot(torch.arange(supports) % classes, classes, 0.1).double()
    labels[-1] = 0  # a support row whose label is hidden
    got = paws_loss(anchor_views, anchor_supports, target_views, target_supports, labels, 0.3, 0.25)
    want = paws_loop_reference(anchor_views, anchor_supports, target_views, target_supports, labels, 0.3, 0.25)
    for g, w in zip(got, want):
        assert math.isclose(g.item(), w, rel_tol=1e-6, abs_tol=1e-9)


def test_paws_targets_carry_no_gradient_and_smoothing_is_one_hot_plus_uniform():
    from solo_semppl.losses.paws import paws_loss, sharpen, smoothed_one_hot

    assert torch.allclose(smoothed_one_hot(torch.tensor([1, -1]), 4, 0.2),
                          torch.tensor([[0.05, 0.85, 0.05, 0.05], [0, 0, 0, 0]]))
    assert torch.allclose(sharpen(torch.tensor([0.5, 0.25, 0.25]), 0.5), torch.tensor([4, 1, 1]) / 6.0)
    anchors, targets = torch.randn(4, 3, 5, requires_grad=True), torch.randn(2, 3, 5, requires_grad=True)
    supports, target_supports = torch.randn(6, 5, requires_grad=True), torch.randn(6, 5, requires_grad=True)
    ce, me_max = paws_loss(anchors, supports, targets, target_supports, smoothed_one_hot(torch.arange(6) % 3, 3))
    (ce + me_max).backward()
    assert targets.grad is None and target_supports.grad is None
    assert anchors.grad.abs().sum() > 0 and supports.grad.abs().sum() > 0 and me_max.item() >= 0
    with pytest.raises(ValueError, match="expected \\[V, B, D\\] / \\[L, B, D\\] with 2 <= L <= V"):
        paws_loss(anchors, supports, targets[:1], target_supports, smoothed_one_hot(torch.arange(6) % 3, 3))
