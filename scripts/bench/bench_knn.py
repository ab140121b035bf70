"""k-NN pseudo-labelling cost, torch vs faiss, against a same-shape torch.mm measured in the
same run; and one SemPPL core step (loss + labeller + sampler + enqueue) against one ReLICv2
loss call. Prints ratios; nothing here is a test.

    python scripts/bench/bench_knn.py               # CPU shape and the largest paper-like shape that fits
    python scripts/bench/bench_knn.py --queue 81920 # the paper's queue (4 x 81,920 x 256, 4 x 4,096 queries)
"""
import argparse
import statistics
import time

import torch

from solo_semppl.losses import relic_loss, sample_negatives, semantic_positive_loss
from solo_semppl.semantic import LabelledQueue, knn_pseudo_labels, sample_semantic_positives


def timed(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def knn_shape(views, queries, capacity, dim, classes, repeats):
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(views, queries, dim, generator=g), dim=-1)
    bank = torch.nn.functional.normalize(torch.randn(views, capacity, dim, generator=g), dim=-1)
    labels = torch.randint(0, classes, (views, capacity), generator=g)
    flops = 2.0 * views * views * queries * capacity * dim
    mm = timed(lambda: q.reshape(-1, dim) @ bank.reshape(-1, dim).T, repeats)
    print(f"shape: {views} views x {queries} queries vs {views} queues x {capacity} x {dim}")
    print(f"  torch.mm (same FLOPs)   {mm * 1e3:9.1f} ms  {flops / mm / 1e9:7.1f} GFLOP/s")
    for backend in ("torch", "faiss"):
        t = timed(lambda: knn_pseudo_labels(q, bank, labels, classes, backend=backend), repeats)
        print(f"  knn {backend:<6}              {t * 1e3:9.1f} ms  {flops / t / 1e9:7.1f} GFLOP/s  "
              f"time / mm = {t / mm:.2f}")


def step_cost(views_on, views_t, batch, capacity, dim, classes, repeats):
    g = torch.Generator().manual_seed(1)
    online, target = torch.randn(views_on, batch, dim, generator=g), torch.randn(views_t, batch, dim, generator=g)
    labels, ids = torch.randint(0, classes, (batch,), generator=g), torch.arange(batch)
    queue = LabelledQueue(views_t, capacity, dim)
    for _ in range(capacity // batch):
        queue.enqueue(target, labels, ids)
    negatives = sample_negatives(batch, 10, g)

    def relic():
        relic_loss(online, target, negatives)

    def semppl():
        relic_loss(online, target, negatives)
        pseudo = knn_pseudo_labels(online[:views_t], queue.embeddings, queue.labels, classes)
        index, valid = sample_semantic_positives(pseudo.labels, queue.labels, queue.ids, 3, generator=g)
        positives = queue.embeddings[torch.arange(views_t)[:, None, None], index]
        semantic_positive_loss(online, positives, valid, target, negatives)
        queue.enqueue(target, labels, ids, mask=torch.rand(batch, generator=g) < 0.1)

    t_relic, t_semppl = timed(relic, repeats), timed(semppl, repeats)
    print(f"core step at {views_on}+{views_t} views, batch {batch}, queue {capacity}: relic loss {t_relic * 1e3:.2f} ms, "
          f"semppl loss + labeller + sampler + enqueue {t_semppl * 1e3:.2f} ms, ratio {t_semppl / t_relic:.2f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--queue", type=int, default=20480, help="paper-like queue per view (paper: 81920)")
    p.add_argument("--queries", type=int, default=4096)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    import faiss

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    print(f"threads: torch {torch.get_num_threads()}, faiss {args.threads}")
    knn_shape(4, 64, 1280, 256, 10, args.repeats * 5)
    knn_shape(4, args.queries, args.queue, 256, 1000, args.repeats)
    step_cost(6, 4, 64, 1280, 256, 10, args.repeats * 5)


if __name__ == "__main__":
    main()
