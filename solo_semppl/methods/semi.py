"""What every semi-supervised method here shares, as a mixin for a solo-learn ``BaseMethod``
subclass (``class ReLIC(SemiSupervised, BaseMomentumMethod)``): the labelled split as a buffer,
the labels of unlabelled images hidden before solo-learn's step, per-step seeded generators,
and the NaN/inf guard (skip, roll back, all ranks together) with the step's logging.

method_kwargs (validated with the method's own, ``OPTIONS``):
    max_nonfinite_steps (int, 10): a NaN/inf loss skips the step (no optimiser, EMA or queue
        update; all DDP ranks together) and rolls back the step's batch-norm running statistics;
        this many in a row stop training with ``NonFiniteLossError`` (``solo_semppl.nonfinite``).
        0 turns the guard off (it reads the loss on the host every step, which an XLA step must not).
Logged: train_<term>_step / train_<term>_epoch for each loss term and telemetry value and for
train_ssl_loss (what ``self.log(on_epoch=True)`` writes, at a fraction of its cost: the step's
values go to Lightning only on the steps its logger writes, ``log_every_n_steps``, and their epoch
means are kept by ``EpochMeans``, one stacked add a step); train_nonfinite_steps likewise.
"""
from typing import Any, Dict, Optional, Sequence, Tuple

import omegaconf
import torch
from solo.utils.misc import concat_all_gather_no_grad, gather

from solo_semppl.data.semi_config import resolve_split
from solo_semppl.nonfinite import NonFiniteGuard, NormStatistics, finite_on_all_ranks
from solo_semppl.options import positive_int
from solo_semppl.seeding import mix_seed


def gather_views(x: torch.Tensor, with_grad: bool) -> torch.Tensor:
    """Concatenates a [V, B, ...] tensor over DDP ranks along the batch (identity on one rank)."""
    x = x.transpose(0, 1).contiguous()
    x = gather(x) if with_grad else concat_all_gather_no_grad(x)
    return x.transpose(0, 1)


def global_batch_size(cfg: omegaconf.DictConfig) -> int:
    """Images per optimiser step over all ranks: batch per device x devices x nodes."""
    return cfg.optimizer.batch_size * len(cfg.devices) * omegaconf.OmegaConf.select(cfg, "num_nodes", default=1)


def masked_classification(logits: torch.Tensor, targets: torch.Tensor) -> dict:
    """Cross-entropy, acc@1 and acc@5 over the samples whose target is not -1.

    With no labelled sample the loss is 0 (gradient 0) and the accuracies are 0, never NaN.
    """
    labelled = targets >= 0
    count = labelled.sum().clamp(min=1)
    safe_targets = targets.clamp(min=0)
    per_sample = torch.nn.functional.cross_entropy(logits, safe_targets, reduction="none")
    loss = (per_sample * labelled).sum() / count
    top_k = min(5, logits.size(1))
    hits = logits.topk(top_k, dim=1).indices == safe_targets[:, None]
    acc1 = (hits[:, 0] & labelled).sum() * 100.0 / count
    acc5 = (hits.any(1) & labelled).sum() * 100.0 / count
    return {"loss": loss, "acc1": acc1, "acc5": acc5}


class EpochMeans:
    """Running means of named scalar tensors, one stacked add a step; ``means()`` returns them
    and starts over. Example:
        >>> means = EpochMeans(); means.add({"a": torch.tensor(1.0)}); means.add({"a": torch.tensor(3.0)})
        >>> means.means()
        {'a': tensor(2.)}
    """

    def __init__(self):
        self.sums: Dict[Tuple[str, ...], Tuple[torch.Tensor, int]] = {}  # names -> (sum, steps)

    def add(self, values: Dict[str, torch.Tensor]) -> None:
        names = tuple(values)
        stacked = torch.stack([value.detach().float().reshape(()) for value in values.values()])
        total, steps = self.sums.get(names, (0.0, 0))
        self.sums[names] = (total + stacked, steps + 1)

    def means(self) -> Dict[str, torch.Tensor]:
        out = {name: total[i] / steps for names, (total, steps) in self.sums.items() for i, name in enumerate(names)}
        self.sums = {}
        return out


class SemiSupervised:
    """The mixin; call ``init_semi_supervised(cfg)`` in ``__init__``. ``NEEDS_SPLIT``: a
    missing ``semi_supervised`` split is an error (else the method runs self-supervised)."""

    OPTIONS = {"max_nonfinite_steps": positive_int(10, allow_zero=True)}
    NEEDS_SPLIT = False

    def init_semi_supervised(self, cfg: omegaconf.DictConfig) -> None:
        split = resolve_split(cfg)
        if split is None and self.NEEDS_SPLIT:
            raise ValueError(
                f"{cfg.method} needs a labelled split: set one of semi_supervised.fraction, "
                "semi_supervised.per_class or semi_supervised.file"
            )
        self.register_buffer("labelled_mask", None if split is None else split.mask())
        self.seed = int(omegaconf.OmegaConf.select(cfg, "seed", default=5))
        self.nonfinite = NonFiniteGuard(cfg.method_kwargs.max_nonfinite_steps)
        self.norm_stats = NormStatistics()
        self.epoch_means = EpochMeans()

    def visible_targets(self, indexes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The targets a semi-supervised method may see: -1 for unlabelled images."""
        if self.labelled_mask is None:
            return targets
        return torch.where(self.labelled_mask[indexes], targets, torch.full_like(targets, -1))

    def step_generator(self, stream: int) -> torch.Generator:
        """A generator seeded by (seed, global step, stream): the same draw on every rank and on
        a resumed run; one stream per random choice of the step."""
        return torch.Generator().manual_seed(mix_seed(self.seed, int(self.global_step), stream))

    def base_training_step(self, X: torch.Tensor, targets: torch.Tensor) -> Dict[str, Any]:
        out = self(X)
        out.update(masked_classification(out["logits"], targets))
        return out

    def labelled_base_step(self, batch: Sequence[Any], batch_idx: int) -> Tuple[Dict[str, Any], torch.Tensor]:
        """solo-learn's step with the unlabelled images' labels hidden (its online probe and kNN
        learn from labelled images only); the batch-norm statistics saved first for the guard.
        Returns solo-learn's outputs and the visible targets."""
        indexes, X, targets = batch
        visible = self.visible_targets(indexes, targets)
        if self.nonfinite.enabled:
            self.norm_stats.save(self)
        return super().training_step([indexes, X, visible], batch_idx), visible

    def finish_step(self, ssl_loss: torch.Tensor, class_loss: torch.Tensor, logged: Dict[str, torch.Tensor]) -> Optional[torch.Tensor]:
        """ssl + online-probe loss, or None for a non-finite step (skipped on every rank: Lightning
        skips backward and the optimiser; the step's batch-norm statistics are put back). Logs
        ``logged`` as train_<name>, computed from gathered inputs: equal on every rank, no sync."""
        loss = ssl_loss + class_loss
        if self.nonfinite.enabled and self.nonfinite.skip(finite_on_all_ranks(loss)):
            self.norm_stats.restore()
            return None
        values = {f"train_{name}": value for name, value in {**logged, "ssl_loss": ssl_loss}.items()}
        self.epoch_means.add(values)
        if self._trainer is not None and self.trainer._logger_connector.should_update_logs:
            self.log_dict({f"{name}_step": value for name, value in values.items()})
            self.log_nonfinite_steps()
        return loss

    def log_nonfinite_steps(self) -> None:
        if self.nonfinite.enabled:
            self.log("train_nonfinite_steps", float(self.nonfinite.total))

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self.log_dict({f"{name}_epoch": value for name, value in self.epoch_means.means().items()})
        self.log_nonfinite_steps()

    def on_save_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        checkpoint["nonfinite_steps"] = self.nonfinite.state_dict()

    def on_load_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        if "nonfinite_steps" in checkpoint:
            self.nonfinite.load_state_dict(checkpoint["nonfinite_steps"])
