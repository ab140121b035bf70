"""ReLICv2 loss (Tomasev et al. 2022): augmentation positives with sampled negatives."""
import torch

from solo_semppl.losses.semantic import semantic_positive_loss


def relic_loss(online, target, negatives, temperature=0.2, kl_form="k1"):
    """Contrastive and KL invariance terms of ReLICv2.

    For anchor i, online view a (any of V_on, large first) and target view b (one of V_t large):
    candidates {i} + negatives[i] taken from target view b, p = softmax <o_i^a, t_c^b> / tau,
    contrastive -log p(i); invariance K1 KL(sg[q] || p), q = softmax <t_i^b, o_c^a> / tau over the
    same candidates, or K2 KL(sg[p^{ba}] || p^{ab}) for large-large pairs. Summed over all
    V_on x V_t pairs (a == b included), divided by V_on * V_t, averaged over the batch.

    It is the semantic-positive loss with one positive per view, the anchor's own target view:
    one implementation serves both (``semantic.py``).

    Args:
        online: [V_on, B, D]. target: [V_t, B, D] (no gradient). negatives: [B, n] long.
        temperature: tau > 0. kl_form: "k1" (default) or "k2".
    Returns:
        (contrastive, invariance) scalars.

    Example:
        >>> online, target = torch.randn(6, 32, 16), torch.randn(4, 32, 16)
        >>> contrastive, invariance = relic_loss(online, target, sample_negatives(32, 10))
    """
    if target.dim() != 3:
        raise ValueError(f"target {tuple(target.shape)}: expected [V_t, B, D]")
    valid = torch.ones(target.shape[:2], dtype=torch.bool, device=target.device)[:, None]
    return semantic_positive_loss(online, target[:, None], valid, target, negatives, temperature, kl_form)
