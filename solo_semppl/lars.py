"""LARS without host syncs: solo-learn's ``solo.utils.lars.LARS`` (from lightning-bolts) with
its data-dependent Python branches replaced by ``torch.where`` / ``clamp``.

solo-learn's step reads ``if p_norm != 0 and g_norm != 0`` and, with ``clip_lr``,
``min(lars_lr / lr, 1)``: both turn a device tensor into a Python bool, a host sync per
parameter per step (on an XLA device the step graph is cut there and every parameter costs a
device-to-host transfer). Here the same update is computed for every parameter and selected
by a mask, so a step is one graph. The math is the same, operation for operation:

    trust = eta * ||p|| / (||g|| + wd * ||p|| + eps), with clip_lr: min(trust / lr, 1)
    d = (g + wd * p) * trust   if ||p|| != 0 and ||g|| != 0 (and the parameter is scaled)
    d = g                      otherwise (no weight decay either, as in solo-learn)
    SGD momentum / dampening / nesterov on d, then p -= lr * d.

A parameter is scaled unless ``exclude_bias_n_norm`` is set and it is 1-d (biases, norms).
Framework-free (no solo-learn); ``ReLIC`` / ``SemPPL`` use it for ``optimizer.name: lars``,
so ``optimizer.kwargs`` (momentum, eta, clip_lr, exclude_bias_n_norm, with solo-learn's
defaults filled in by its ``parse_cfg``) mean what they mean in solo-learn.
"""
import torch
from torch.optim.optimizer import Optimizer, required


class LARS(Optimizer):
    """Drop-in for ``solo.utils.lars.LARS`` (same arguments and defaults, same state layout:
    ``momentum_buffer`` per parameter) whose step has no host sync."""

    def __init__(self, params, lr=required, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 eta=1e-3, eps=1e-8, clip_lr=False, exclude_bias_n_norm=False):
        if lr is not required and lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                        eta=eta, eps=eps, clip_lr=clip_lr, exclude_bias_n_norm=exclude_bias_n_norm)
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("nesterov", False)

    @staticmethod
    def scaled_update(p: torch.Tensor, grad: torch.Tensor, group: dict) -> torch.Tensor:
        """The LARS-scaled, weight-decayed gradient, or the plain gradient where a norm is 0."""
        weight_decay = group["weight_decay"]
        p_norm, g_norm = torch.norm(p), torch.norm(grad)
        trust = p_norm / (g_norm + p_norm * weight_decay + group["eps"]) * group["eta"]
        if group["clip_lr"]:
            trust = (trust / group["lr"]).clamp(max=1)
        scaled = grad.add(p, alpha=weight_decay).mul_(trust)
        return torch.where((p_norm != 0) & (g_norm != 0), scaled, grad)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            momentum, dampening = group["momentum"], group["dampening"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad
                if p.ndim != 1 or not group["exclude_bias_n_norm"]:
                    d_p = self.scaled_update(p, d_p, group)
                if momentum != 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        buf = state["momentum_buffer"] = torch.clone(d_p).detach()
                    else:
                        buf = state["momentum_buffer"]
                        buf.mul_(momentum).add_(d_p, alpha=1 - dampening)
                    d_p = d_p.add(buf, alpha=momentum) if group["nesterov"] else buf
                p.add_(d_p, alpha=-group["lr"])
        return loss
