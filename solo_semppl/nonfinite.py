"""Skip steps whose loss is NaN or inf; stop after too many in a row. Framework-free.

Config key (validated with the other ``method_kwargs`` of relic / semppl):
    method_kwargs.max_nonfinite_steps (int >= 0, 10): consecutive non-finite steps that stop
        training with ``NonFiniteLossError``; 1 stops at the first one; 0 turns the guard off
        (no check, so no host read of the loss each step: the TPU config's setting).
"""
from typing import Dict, List

import torch
import torch.distributed as dist
import torch.nn as nn


def finite_on_all_ranks(loss: torch.Tensor) -> bool:
    """True when ``loss`` is finite on every torch.distributed rank (on its own without a process
    group), so that all ranks skip a step together. One host sync a step."""
    bad = (~torch.isfinite(loss.detach())).any().float().reshape(1)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    return not bool(bad)


class NonFiniteLossError(RuntimeError):
    """Training stopped after ``method_kwargs.max_nonfinite_steps`` consecutive NaN/inf losses."""


class NonFiniteGuard:
    """Counts non-finite steps: ``skip(finite)`` returns True when the step must be skipped (no
    optimiser update, no EMA update, no queue write) and raises ``NonFiniteLossError`` on the
    ``max_consecutive``-th bad step in a row. A finite step resets the run of bad steps.

    Example:
        >>> guard = NonFiniteGuard(max_consecutive=10)
        >>> if guard.skip(finite_on_all_ranks(loss)):
        ...     return None
    """

    def __init__(self, max_consecutive: int):
        if isinstance(max_consecutive, bool) or not isinstance(max_consecutive, int) or max_consecutive < 0:
            raise ValueError(f"method_kwargs.max_nonfinite_steps = {max_consecutive!r}: expected an integer >= 0")
        self.max_consecutive, self.consecutive, self.total = max_consecutive, 0, 0
        self.enabled = max_consecutive > 0

    def skip(self, finite: bool) -> bool:
        if finite:
            self.consecutive = 0
            return False
        self.consecutive += 1
        self.total += 1
        if self.consecutive >= self.max_consecutive:
            raise NonFiniteLossError(
                f"the training loss was NaN or inf for {self.consecutive} consecutive steps "
                f"(method_kwargs.max_nonfinite_steps = {self.max_consecutive}); check: the learning rate "
                "(optimizer.lr, warmup: lower it), the temperature (method_kwargs.temperature: too small "
                "overflows the softmax), the precision (precision: 16-mixed can overflow, try 32 or bf16-mixed) "
                "and the input images (corrupt, constant or wrongly normalised images in data.train_path)"
            )
        return True

    def state_dict(self) -> Dict[str, int]:
        return {"consecutive": self.consecutive, "total": self.total}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        self.consecutive, self.total = int(state["consecutive"]), int(state["total"])


class NormStatistics:
    """The batch-norm running statistics of a module, saved before a step so that a skipped step
    can put them back: the buffers are found once (the first ``save``) and copied into
    preallocated tensors, no module walk and no allocation per step.

    Example:
        >>> stats = NormStatistics()
        >>> stats.save(model)      # before the forward
        >>> stats.restore()        # the step was skipped
    """

    def __init__(self):
        self.buffers: List[torch.Tensor] = []
        self.saved: List[torch.Tensor] = []

    def save(self, module: nn.Module) -> None:
        if not self.buffers:
            self.buffers = [buffer for m in module.modules() if isinstance(m, nn.modules.batchnorm._NormBase)
                            for buffer in (m.running_mean, m.running_var, m.num_batches_tracked) if buffer is not None]
            self.saved = [torch.empty_like(buffer) for buffer in self.buffers]
        for saved, buffer in zip(self.saved, self.buffers):
            saved.copy_(buffer)

    def restore(self) -> None:
        for buffer, saved in zip(self.buffers, self.saved):
            buffer.copy_(saved)
