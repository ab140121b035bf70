"""k-NN pseudo-labels from the labelled queues (SPEC 5.2): votes of every online large view
against every view's queue (16 at 4 x 4), majority, ties by summed similarity."""
from typing import NamedTuple, Tuple

import torch
import torch.nn.functional as F

BACKENDS = ("torch", "faiss")
VOTES = ("all", "same_view")


class PseudoLabels(NamedTuple):
    labels: torch.Tensor  # [B] long, -1 where no label (empty queue / below threshold)
    agreement: torch.Tensor  # [B] fraction of all votes cast for the winning class (0 if none)
    similarity: torch.Tensor  # [B] mean cosine similarity of the winning votes (0 if none)
    valid: torch.Tensor  # [B] bool


def torch_neighbours(queries, bank, bank_labels, k, chunk: int = 256) -> Tuple[torch.Tensor, torch.Tensor]:
    """Top-k (similarity, label) of every query view against every queue: [V_q, V_k, B, k];
    empty slots get similarity -inf and label -1 (never a vote). Queries go in chunks of
    ``chunk`` images so that the similarity block stays [V_q, V_k, chunk, C]."""
    empty = bank_labels[None, :, None, :] < 0
    tops, labels = [], []
    for start in range(0, queries.size(1), chunk):
        sims = torch.einsum("qbd,kcd->qkbc", queries[:, start:start + chunk], bank).masked_fill(empty, float("-inf"))
        top, index = sims.topk(min(k, bank.size(1)), dim=-1)
        found = bank_labels[None, :, None, :].expand(sims.size(0), -1, sims.size(2), -1).gather(-1, index)
        tops.append(top)
        labels.append(torch.where(torch.isfinite(top), found, torch.full_like(found, -1)))
    return torch.cat(tops, dim=2), torch.cat(labels, dim=2)


def faiss_neighbours(queries, bank, bank_labels, k) -> Tuple[torch.Tensor, torch.Tensor]:
    """Same as ``torch_neighbours`` with one exact faiss IndexFlatIP per queue (valid entries)."""
    import faiss

    v_q, batch, dim = queries.shape
    k_eff = min(k, bank.size(1))
    sims = torch.full((v_q, bank.size(0), batch, k_eff), float("-inf"))
    labels = torch.full((v_q, bank.size(0), batch, k_eff), -1, dtype=torch.long)
    flat_queries = queries.reshape(-1, dim).cpu().numpy()
    for v in range(bank.size(0)):
        keep = (bank_labels[v] >= 0).cpu()
        entries = bank[v].cpu()[keep]
        if entries.size(0) == 0:
            continue
        index = faiss.IndexFlatIP(dim)
        index.add(entries.numpy())
        found_sims, found = index.search(flat_queries, k_eff)
        found = torch.from_numpy(found).reshape(v_q, batch, k_eff)
        hit = found >= 0
        entry_labels = bank_labels[v].cpu()[keep]
        sims[:, v] = torch.where(hit, torch.from_numpy(found_sims).reshape(v_q, batch, k_eff), sims[:, v])
        labels[:, v] = torch.where(hit, entry_labels[found.clamp(min=0)], labels[:, v])
    return sims.to(queries.device), labels.to(queries.device)


@torch.no_grad()
def knn_pseudo_labels(queries, bank, bank_labels, num_classes, k=1, votes="all", threshold=0.0, backend="torch"):
    """Pseudo-labels of the B images of ``queries``.

    Args:
        queries: [V_q, B, D] (online predictions of the large views). bank: [V_k, C, D] queues.
        bank_labels: [V_k, C] long, -1 = empty slot. num_classes: labels are in [0, num_classes).
        k: neighbours per (query view, queue) pair; with k > 1 all neighbours vote together.
        votes: "all" (V_q x V_k pairs) or "same_view" (view v against queue v; V_q == V_k).
        threshold: labels whose agreement (winning votes / all votes) is below it become -1.
        backend: "torch" (no host sync; GPU/TPU) or "faiss" (exact IndexFlatIP; CPU).
    Returns:
        PseudoLabels(labels, agreement, similarity, valid), each [B].
    """
    if queries.dim() != 3 or bank.dim() != 3 or queries.size(-1) != bank.size(-1):
        raise ValueError(f"queries {tuple(queries.shape)} / bank {tuple(bank.shape)}: expected [V_q, B, D] / [V_k, C, D]")
    if bank_labels.shape != bank.shape[:2] or bank_labels.dtype != torch.long:
        raise ValueError(f"bank_labels {tuple(bank_labels.shape)} {bank_labels.dtype}: expected long {tuple(bank.shape[:2])}")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k = {k!r}: expected an int >= 1")
    if votes not in VOTES or (votes == "same_view" and queries.size(0) != bank.size(0)):
        raise ValueError(f"votes = {votes!r}: expected one of {VOTES} ('same_view' needs V_q == V_k)")
    if backend not in BACKENDS:
        raise ValueError(f"backend = {backend!r}: expected one of {BACKENDS}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold = {threshold}: expected a number in [0, 1]")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes = {num_classes!r}: expected an int >= 1")
    q = F.normalize(queries.float(), dim=-1)
    b = F.normalize(bank.float(), dim=-1)
    find = torch_neighbours if backend == "torch" else faiss_neighbours
    sims, labels = find(q, b, bank_labels, k)  # [V_q, V_k, B, k]
    if votes == "same_view":
        diagonal = torch.arange(q.size(0), device=sims.device)
        sims, labels = sims[diagonal, diagonal][:, None], labels[diagonal, diagonal][:, None]
    batch = q.size(1)
    sims = sims.permute(2, 0, 1, 3).reshape(batch, -1)
    labels = labels.permute(2, 0, 1, 3).reshape(batch, -1)
    vote = (labels >= 0).float()
    slot = labels.clamp(min=0)
    counts = torch.zeros(batch, num_classes, device=q.device).scatter_add_(1, slot, vote)
    sim_sums = torch.zeros(batch, num_classes, device=q.device).scatter_add_(1, slot, torch.where(vote > 0, sims, 0.0))
    top_count = counts.max(dim=1).values
    tied = counts == top_count[:, None]
    winner = torch.where(tied, sim_sums, torch.full_like(sim_sums, float("-inf"))).argmax(dim=1)
    total = vote.sum(1)
    agreement = top_count / total.clamp(min=1)
    similarity = sim_sums.gather(1, winner[:, None]).squeeze(1) / top_count.clamp(min=1)
    valid = (total > 0) & (agreement >= threshold)
    return PseudoLabels(
        torch.where(valid, winner, torch.full_like(winner, -1)),
        torch.where(total > 0, agreement, 0.0), torch.where(total > 0, similarity, 0.0), valid,
    )
