"""Queue, k-NN pseudo-labeller, positive sampler and telemetry against brute-force references."""
import importlib.util
from collections import Counter

import pytest
import torch

from solo_semppl.semantic import (
    LabelledQueue, knn_pseudo_labels, pseudo_label_metrics, queue_class_coverage, sample_semantic_positives,
)

HAS_FAISS = importlib.util.find_spec("faiss") is not None


# ---------------------------------------------------------------- queue vs a Python list FIFO
def fifo_reference(capacity, batches):
    """Slots of a ring buffer written in order: the list model of the queue."""
    slots, ptr = [None] * capacity, 0
    for rows, mask in batches:
        for row, keep in zip(rows, mask):
            if keep:
                slots[ptr] = row
                ptr = (ptr + 1) % capacity
    return slots, ptr


@pytest.mark.parametrize("views, capacity, n", [(1, 5, 3), (2, 7, 7), (4, 16, 5), (3, 3, 2)])
@pytest.mark.parametrize("seed", [0, 1])
def test_queue_matches_a_python_fifo(views, capacity, n, seed):
    g = torch.Generator().manual_seed(seed)
    queue = LabelledQueue(views, capacity, 4)
    batches, next_id = [], 0
    for _ in range(9):
        emb = torch.randn(views, n, 4, generator=g)
        labels = torch.randint(0, 5, (n,), generator=g)
        ids = torch.arange(next_id, next_id + n)
        next_id += n
        mask = torch.rand(n, generator=g) < 0.6
        queue.enqueue(emb, labels, ids, mask)
        rows = [(emb[:, r] / emb[:, r].norm(dim=-1, keepdim=True), int(labels[r]), int(ids[r])) for r in range(n)]
        batches.append((rows, mask.tolist()))
    slots, ptr = fifo_reference(capacity, batches)
    assert int(queue.ptr) == ptr
    for s, entry in enumerate(slots):
        if entry is None:
            assert int(queue.labels[0, s]) == -1 and not queue.valid[:, s].any()
        else:
            emb, label, image_id = entry
            assert (queue.labels[:, s] == label).all() and (queue.ids[:, s] == image_id).all()
            assert torch.allclose(queue.embeddings[:, s], emb, atol=1e-6)


def test_queue_bf16_storage_stays_close_to_fp32():
    g = torch.Generator().manual_seed(0)
    emb, labels = torch.randn(2, 8, 32, generator=g), torch.arange(8)
    full, half = LabelledQueue(2, 8, 32), LabelledQueue(2, 8, 32, torch.bfloat16)
    for q in (full, half):
        q.enqueue(emb, labels, labels)
    assert half.embeddings.dtype == torch.bfloat16
    assert (half.embeddings.float() - full.embeddings).abs().max() < 1e-2  # bf16: 8 mantissa bits on unit vectors


def test_queue_gather_hook_is_applied_before_writing():
    calls = []

    def twice(t):
        calls.append(t.shape)
        return torch.cat([t, t])

    queue = LabelledQueue(2, 10, 3)
    queue.enqueue(torch.randn(2, 3, 3), torch.tensor([0, 1, 2]), torch.tensor([5, 6, 7]), gather=twice)
    assert len(calls) == 4 and int(queue.ptr) == 6
    assert queue.ids[0, :6].tolist() == [5, 6, 7, 5, 6, 7]


def test_queue_state_dict_round_trip_and_size_mismatch():
    queue = LabelledQueue(2, 6, 3)
    queue.enqueue(torch.randn(2, 4, 3), torch.tensor([1, 0, 1, 2]), torch.arange(4))
    fresh = LabelledQueue(2, 6, 3)
    fresh.load_state_dict(queue.state_dict())
    for name, buffer in queue.named_buffers():
        assert torch.equal(buffer, dict(fresh.named_buffers())[name])
    with pytest.raises(ValueError, match="capacity"):
        LabelledQueue(2, 7, 3).load_state_dict(queue.state_dict())


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: LabelledQueue(2, 0, 3), "capacity"),
        (lambda: LabelledQueue(2, 4, 3).enqueue(torch.randn(2, 5, 3), torch.zeros(5, dtype=torch.long), torch.arange(5)),
         "capacity 4 is smaller than one enqueued batch"),
        (lambda: LabelledQueue(2, 4, 3).enqueue(torch.randn(3, 2, 3), torch.zeros(2, dtype=torch.long), torch.arange(2)),
         "embeddings"),
        (lambda: LabelledQueue(2, 4, 3).enqueue(torch.randn(2, 2, 3), torch.zeros(2), torch.arange(2)), "labels"),
    ],
)
def test_queue_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------- k-NN vs a full sort
def knn_reference(queries, bank, bank_labels, num_classes, k, votes, threshold):
    """Full sort of all similarities per (query view, queue) pair, explicit vote counting, ties
    broken by summed similarity."""
    qn = torch.nn.functional.normalize(queries.double(), dim=-1)
    bn = torch.nn.functional.normalize(bank.double(), dim=-1)
    out = []
    for i in range(queries.size(1)):
        ballots = []
        for a in range(queries.size(0)):
            for v in range(bank.size(0)):
                if votes == "same_view" and a != v:
                    continue
                entries = [(float(qn[a, i] @ bn[v, c]), int(bank_labels[v, c])) for c in range(bank.size(1)) if bank_labels[v, c] >= 0]
                ballots += sorted(entries, reverse=True)[:k]
        if not ballots:
            out.append(-1)
            continue
        counts, sums = Counter(), Counter()
        for sim, label in ballots:
            counts[label] += 1
            sums[label] += sim
        best = max(counts.values())
        winner = max((c for c in counts if counts[c] == best), key=lambda c: sums[c])
        out.append(winner if best / len(ballots) >= threshold else -1)
    return out


def random_bank(g, views=4, capacity=12, dim=8, classes=5, empty=0.3):
    bank = torch.randn(views, capacity, dim, generator=g)
    labels = torch.randint(0, classes, (views, capacity), generator=g)
    labels[torch.rand(views, capacity, generator=g) < empty] = -1
    return bank, labels


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("votes", ["all", "same_view"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_knn_matches_full_sort_reference(k, votes, seed):
    g = torch.Generator().manual_seed(seed)
    bank, labels = random_bank(g)
    queries = torch.randn(4, 10, 8, generator=g)
    got = knn_pseudo_labels(queries, bank, labels, 5, k=k, votes=votes)
    assert got.labels.tolist() == knn_reference(queries, bank, labels, 5, k, votes, 0.0)


def test_ties_go_to_the_larger_summed_similarity_not_the_smaller_class():
    bank = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # one queue: class 0 along x, class 1 along y
    labels = torch.tensor([[0, 1]])
    queries = torch.tensor([[[0.2, 1.0]], [[1.0, 0.3]]])  # view 0 votes 1 (strongly), view 1 votes 0
    got = knn_pseudo_labels(queries, bank, labels, 2, votes="all")
    cos_y = 1.0 / torch.tensor([0.2, 1.0]).norm()
    cos_x = 1.0 / torch.tensor([1.0, 0.3]).norm()
    assert got.labels.tolist() == ([1] if cos_y > cos_x else [0]) and got.agreement.tolist() == [0.5]
    queries = torch.tensor([[[0.2, 1.0]], [[1.0, 0.05]]])
    assert knn_pseudo_labels(queries, bank, labels, 2).labels.tolist() == [0]


def test_votes_same_view_differs_from_all_on_a_crafted_case():
    bank = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]])
    labels = torch.tensor([[0, 1], [0, 1]])  # queue 1 holds the classes on swapped axes
    queries = torch.tensor([[[1.0, 0.1]], [[1.0, 0.1]], [[1.0, 0.1]]])[:2]
    all_votes = knn_pseudo_labels(queries, bank, labels, 2, votes="all")
    same = knn_pseudo_labels(queries, bank, labels, 2, votes="same_view")
    assert all_votes.agreement.tolist() == [0.5] and same.agreement.tolist() == [0.5]
    queries = torch.tensor([[[1.0, 0.1]], [[0.1, 1.0]]])
    assert knn_pseudo_labels(queries, bank, labels, 2, votes="same_view").labels.tolist() == [0]
    assert knn_pseudo_labels(queries, bank, labels, 2, votes="all").agreement.tolist() == [0.5]


def test_threshold_masks_low_agreement_labels():
    g = torch.Generator().manual_seed(3)
    bank, labels = random_bank(g, empty=0.0)
    queries = torch.randn(4, 20, 8, generator=g)
    free = knn_pseudo_labels(queries, bank, labels, 5)
    strict = knn_pseudo_labels(queries, bank, labels, 5, threshold=0.6)
    low = free.agreement < 0.6
    assert low.any() and (~low).any()
    assert (strict.labels[low] == -1).all() and torch.equal(strict.labels[~low], free.labels[~low])


def test_empty_queue_and_k_beyond_the_valid_entries():
    bank, labels = torch.randn(2, 4, 3), torch.full((2, 4), -1)
    empty = knn_pseudo_labels(torch.randn(2, 5, 3), bank, labels, 3)
    assert (empty.labels == -1).all() and not empty.valid.any()
    assert torch.isfinite(empty.agreement).all() and torch.isfinite(empty.similarity).all()
    labels[0, 1] = 2
    few = knn_pseudo_labels(torch.randn(2, 5, 3), bank, labels, 3, k=10)
    assert (few.labels == 2).all() and (few.agreement == 1).all()


@pytest.mark.skipif(not HAS_FAISS, reason="faiss is not installed")
@pytest.mark.parametrize("seed, k", [(0, 1), (1, 1), (2, 3), (3, 5)])
def test_faiss_and_torch_backends_agree(seed, k):
    g = torch.Generator().manual_seed(seed)
    bank, labels = random_bank(g, capacity=40, dim=16, classes=7)
    queries = torch.randn(4, 30, 16, generator=g)
    a = knn_pseudo_labels(queries, bank, labels, 7, k=k, backend="torch")
    b = knn_pseudo_labels(queries, bank, labels, 7, k=k, backend="faiss")
    assert torch.equal(a.labels, b.labels)
    assert torch.allclose(a.agreement, b.agreement) and torch.allclose(a.similarity, b.similarity, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"k": 0}, "k = 0"), ({"backend": "annoy"}, "backend"), ({"votes": "some"}, "votes"),
     ({"threshold": 1.5}, "threshold")],
)
def test_knn_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        knn_pseudo_labels(torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.zeros(2, 5, dtype=torch.long), 3, **kwargs)


# ---------------------------------------------------------------- sampler
def eligible_entries(view_labels, view_ids, label, own_id, exclude_self):
    return [c for c in range(len(view_labels)) if label >= 0 and view_labels[c] == label
            and not (exclude_self and view_ids[c] == own_id)]


@pytest.mark.parametrize("exclude_self", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_sampled_entry_is_eligible_and_invalid_exactly_when_none_is(exclude_self, seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(-1, 4, (3, 15), generator=g)
    ids = torch.randint(0, 6, (3, 15), generator=g)  # repeated ids: stale copies of an image
    anchors = torch.randint(-1, 5, (9,), generator=g)  # class 4 is never in the queue
    anchor_ids = torch.randint(0, 6, (9,), generator=g)
    index, valid = sample_semantic_positives(anchors, labels, ids, 4, anchor_ids, exclude_self, g)
    assert index.shape == valid.shape == (3, 4, 9)
    for v in range(3):
        for i in range(9):
            pool = eligible_entries(labels[v].tolist(), ids[v].tolist(), int(anchors[i]), int(anchor_ids[i]), exclude_self)
            assert bool(valid[v, 0, i]) == bool(pool)
            for p in range(4):
                if pool:
                    assert int(index[v, p, i]) in pool


def test_draws_are_uniform_among_eligible_entries():
    labels = torch.tensor([[0, 1, 0, 0, 1, 0, 2, 0]])
    ids = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 3]])
    anchors, anchor_ids = torch.tensor([0]), torch.tensor([3])
    index, _ = sample_semantic_positives(anchors, labels, ids, 6000, anchor_ids, True, torch.Generator().manual_seed(0))
    counts = Counter(index.flatten().tolist())
    assert set(counts) == {0, 2, 5}  # class 0 minus both stale copies of id 3
    expected = 6000 / 3
    chi2 = sum((counts[c] - expected) ** 2 / expected for c in counts)
    assert chi2 < 13.8  # chi-square, 2 degrees of freedom, p = 0.001


def test_sampler_is_seeded_and_zero_positives_is_empty():
    labels, ids = torch.randint(0, 3, (2, 20)), torch.arange(40).reshape(2, 20)
    anchors = torch.randint(0, 3, (6,))
    a = sample_semantic_positives(anchors, labels, ids, 3, generator=torch.Generator().manual_seed(1))
    b = sample_semantic_positives(anchors, labels, ids, 3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0])
    index, valid = sample_semantic_positives(anchors, labels, ids, 0)
    assert index.shape == (2, 0, 6)


@pytest.mark.parametrize("size", [1, 2, 7, 8, 33])
@pytest.mark.parametrize("right", [False, True])
def test_bisect_matches_torch_searchsorted(size, right):
    from solo_semppl.semantic.sampler import bisect

    g = torch.Generator().manual_seed(size)
    rows = torch.randint(0, 6, (3, size), generator=g).sort(dim=1).values  # duplicates
    values = torch.randint(-2, 9, (3, 40), generator=g)  # before, inside and past the rows
    assert torch.equal(bisect(rows, values, right), torch.searchsorted(rows, values, right=right))


def test_sampler_bad_input():
    with pytest.raises(ValueError, match="num_positives"):
        sample_semantic_positives(torch.zeros(2, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long),
                                  torch.zeros(1, 3, dtype=torch.long), -1)
    with pytest.raises(ValueError, match="anchor_ids"):
        sample_semantic_positives(torch.zeros(2, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long),
                                  torch.zeros(1, 3, dtype=torch.long), 1, exclude_self=True)


# ---------------------------------------------------------------- telemetry
def test_pseudo_label_metrics_match_loop_reference():
    g = torch.Generator().manual_seed(0)
    truth = torch.randint(0, 4, (40,), generator=g)
    pred = torch.where(torch.rand(40, generator=g) < 0.6, truth, torch.randint(-1, 4, (40,), generator=g))
    mask = torch.rand(40, generator=g) < 0.8
    got = pseudo_label_metrics(pred, truth, 4, mask)
    rows = [(int(p), int(t)) for p, t, m in zip(pred, truth, mask) if m]
    labelled = [(p, t) for p, t in rows if p >= 0]
    precisions = [sum(p == t for p, t in labelled if p == c) / sum(p == c for p, _ in labelled)
                  for c in range(4) if any(p == c for p, _ in labelled)]
    recalls = [sum(p == t for p, t in rows if t == c) / sum(t == c for _, t in rows)
               for c in range(4) if any(t == c for _, t in rows)]
    assert float(got["accuracy"]) == pytest.approx(sum(p == t for p, t in labelled) / len(labelled))
    assert float(got["coverage"]) == pytest.approx(len(labelled) / len(rows))
    assert float(got["macro_precision"]) == pytest.approx(sum(precisions) / len(precisions))
    assert float(got["macro_recall"]) == pytest.approx(sum(recalls) / len(recalls))


def test_queue_class_coverage():
    labels = torch.tensor([[0, -1, 2], [2, -1, -1]])
    assert float(queue_class_coverage(labels, 4)) == pytest.approx(0.5)
