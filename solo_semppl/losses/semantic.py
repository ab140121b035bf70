"""ReLICv2-form losses with queue positives (SemPPL's semantic-positive loss); ReLICv2 itself is
the special case of one positive per view, the target view of the anchor (``relic.py``).

For online view a, target view b, positive z (sampled from queue b for the semantic loss, the
target embedding t_i^b for ReLIC) and the anchor's negatives N_i (target embeddings t_c^b):
    p^{ab}     = softmax over [z, t_c^b for c in N_i] of <o_i^a, .> / tau
    contrastive = -log p^{ab}(z)
    K1: KL(sg[q] || p^{ab}), q = softmax over [o_i^a, o_c^a for c in N_i] of <z, .> / tau
    K2: KL(sg[p^{ba}] || p^{ab}) for large-large pairs (a, b < V_t); p^{ba} uses online view b
        against queue-a positive and target-a negatives; a == b contributes 0.
Terms are averaged over the valid (a, b, p, i); under K2 the large-large KL sum is divided by the
count over all (a, b, p, i), like ReLIC's division by (V_on * V_t).
"""
import torch
import torch.nn.functional as F

KL_FORMS = ("k1", "k2")


def check_inputs(online, positives, valid, target, negatives, temperature, kl_form) -> None:
    """ValueError naming the argument for any shape, dtype or value that does not fit."""
    if online.dim() != 3 or target.dim() != 3:
        raise ValueError(f"online {tuple(online.shape)} and target {tuple(target.shape)}: expected [V, B, D] each")
    v_on, batch, dim = online.shape
    v_t = target.size(0)
    if target.shape[1:] != (batch, dim) or v_on < v_t:
        raise ValueError(f"target {tuple(target.shape)}: expected [V_t <= {v_on}, {batch}, {dim}] to match online")
    if positives.dim() != 4 or positives.size(0) != v_t or positives.shape[2:] != (batch, dim):
        raise ValueError(f"positives {tuple(positives.shape)}: expected [{v_t}, P, {batch}, {dim}]")
    if valid.dtype != torch.bool or valid.shape != positives.shape[:3]:
        raise ValueError(f"valid {tuple(valid.shape)} {valid.dtype}: expected bool {tuple(positives.shape[:3])}")
    if negatives.dtype != torch.long or negatives.dim() != 2 or negatives.size(0) != batch:
        raise ValueError(f"negatives {tuple(negatives.shape)} {negatives.dtype}: expected long [{batch}, n]")
    if not temperature > 0:
        raise ValueError(f"temperature = {temperature}: expected > 0")
    if kl_form not in KL_FORMS:
        raise ValueError(f"kl_form = {kl_form!r}: expected one of {KL_FORMS}")


def kl_to_detached(target_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """KL(sg[softmax(target_logits)] || softmax(logits)) over the last dim."""
    q_log = F.log_softmax(target_logits.detach(), dim=-1)
    return (q_log.exp() * (q_log - F.log_softmax(logits, dim=-1))).sum(-1)


def semantic_positive_loss(online, positives, valid, target, negatives, temperature=0.2, kl_form="k1"):
    """Contrastive and invariance terms of the positives against the anchors' negatives.

    Args:
        online: [V_on, B, D] online embeddings (first V_t are the large views).
        positives: [V_t, P, B, D] entries drawn for each anchor from queue b (no gradient).
        valid: [V_t, P, B] bool, False where an anchor has no positive.
        target: [V_t, B, D] target embeddings; the negatives are taken from it (no gradient).
        negatives: [B, n] long, batch indices of each anchor's negatives.
        temperature: tau > 0. kl_form: "k1" or "k2".
    Returns:
        (contrastive, invariance) scalars; exactly 0 (graph intact, no NaN) with nothing valid.
    """
    check_inputs(online, positives, valid, target, negatives, temperature, kl_form)
    o = F.normalize(online, dim=-1)
    z = F.normalize(positives.detach().to(o.dtype), dim=-1)
    t_neg = F.normalize(target.detach().to(o.dtype), dim=-1)[:, negatives]  # [V_t, B, n, D]
    pos = torch.einsum("aid,bpid->abpi", o, z)
    neg = torch.einsum("aid,bijd->abij", o, t_neg)[:, :, None].expand(-1, -1, z.size(1), -1, -1)
    logits = torch.cat([pos[..., None], neg], dim=-1) / temperature  # [V_on, V_t, P, B, 1 + n]
    v_on, v_t = logits.shape[:2]
    mask = valid[None].expand(v_on, -1, -1, -1).to(o.dtype)
    count = mask.sum().clamp(min=1)
    contrastive = -(F.log_softmax(logits, dim=-1)[..., 0] * mask).sum() / count
    if kl_form == "k1":
        o_neg = o[:, negatives]  # [V_on, B, n, D]
        q_neg = torch.einsum("bpid,aijd->abpij", z, o_neg)
        q_logits = torch.cat([pos[..., None], q_neg], dim=-1) / temperature
        invariance = (kl_to_detached(q_logits, logits) * mask).sum() / count
    else:
        large = logits[:v_t]  # [V_t, V_t, P, B, 1 + n]
        pair_mask = (valid[None] & valid[:, None]).to(o.dtype)
        invariance = (kl_to_detached(large.transpose(0, 1), large) * pair_mask).sum() / count
    return contrastive, invariance


def semantic_regression_loss(online_pred, positives, valid):
    """BYOL-form semantic term: mean over valid (a, b, p, i) of 2 - 2 cos(online[a, i], z[b, p, i]).

    online_pred [V_on, B, D]; positives [V_t, P, B, D] (no gradient); valid [V_t, P, B] bool.
    """
    if online_pred.dim() != 3 or positives.dim() != 4 or positives.shape[2:] != online_pred.shape[1:]:
        raise ValueError(f"online_pred {tuple(online_pred.shape)} / positives {tuple(positives.shape)}: expected [V, B, D] / [V_t, P, B, D]")
    if valid.dtype != torch.bool or valid.shape != positives.shape[:3]:
        raise ValueError(f"valid {tuple(valid.shape)} {valid.dtype}: expected bool {tuple(positives.shape[:3])}")
    o = F.normalize(online_pred, dim=-1)
    z = F.normalize(positives.detach().to(o.dtype), dim=-1)
    cos = torch.einsum("aid,bpid->abpi", o, z)
    mask = valid[None].expand_as(cos).to(o.dtype)
    return ((2 - 2 * cos) * mask).sum() / mask.sum().clamp(min=1)
