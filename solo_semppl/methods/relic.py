"""ReLICv2 as a solo-learn method (``method: relic``), the base that SemPPL extends."""
from typing import Any, Dict, List, Sequence, Tuple

import omegaconf
import torch
import torch.nn as nn
from solo.losses.byol import byol_loss_func
from solo.losses.simclr import simclr_loss_func
from solo.methods.base import BaseMomentumMethod
from solo.utils.misc import concat_all_gather_no_grad, gather
from solo.utils.momentum import initialize_momentum_params

from solo_semppl.data.semi_config import resolve_split
from solo_semppl.lars import LARS
from solo_semppl.losses import relic_loss, sample_negatives
from solo_semppl.nonfinite import NonFiniteGuard, NormStatistics, finite_on_all_ranks
from solo_semppl.options import apply_options, choice, non_negative, positive_int
from solo_semppl.seeding import mix_seed


def byol_mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """Linear -> BN -> ReLU -> Linear, the BYOL/ReLICv2 projector and predictor."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim)
    )


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


class ReLIC(BaseMomentumMethod):
    """ReLICv2 (Tomasev et al. 2022): contrastive loss with sampled negatives plus a KL
    invariance term, online views (large and small) against EMA-target large views.

    method_kwargs (every key validated; an unknown key is an error):
        proj_hidden_dim (int, 4096), proj_output_dim (int, 256), pred_hidden_dim (int, 4096):
            BYOL-style projector / predictor sizes.
        temperature (float, 0.2): softmax temperature tau.
        num_negatives (int, 10): negatives per anchor, drawn from the (global) batch once a step.
        contrastive_weight (float, 0.3): c, the weight of the contrastive terms.
        invariance_weight (float, 5.0): lambda, the weight of the KL invariance terms.
        kl_form (str, "k1"): invariance reading, "k1" (within the pair) or "k2" (across pairs).
        base_loss (str, "relic"): "relic", or "simclr" / "byol" (solo-learn's own loss functions
            on the online projections / predictions), for SemPPL's base-loss ablation.
        max_nonfinite_steps (int, 10): a NaN/inf loss skips the step (no optimiser, EMA or queue
            update; all DDP ranks together); this many in a row stop training with
            ``NonFiniteLossError`` (see ``solo_semppl.nonfinite``). The step's batch-norm
            running statistics are rolled back too. 0 turns the guard off (it reads the loss on the
            host every step, which an XLA step must not).
    Other groups: ``momentum`` (solo-learn's tau schedule; SPEC 0.996 -> 1) and
    ``semi_supervised`` (the labelled split; see ``solo_semppl.data.semi_config``). With a split,
    the labels of unlabelled images are replaced by -1 before solo-learn's base step, so the
    online linear probe and online kNN learn from labelled images only.
    Logged: train_<term> for each loss term, train_ssl_loss, train_nonfinite_steps (skipped so far).
    ``optimizer.name: lars`` is ``solo_semppl.lars.LARS``: solo-learn's LARS without its host
    syncs (same math, same kwargs), so a step is one XLA graph.
    """

    _OPTIMIZERS = {**BaseMomentumMethod._OPTIMIZERS, "lars": LARS}

    OPTIONS = {
        "proj_hidden_dim": positive_int(4096),
        "proj_output_dim": positive_int(256),
        "pred_hidden_dim": positive_int(4096),
        "temperature": non_negative(0.2),
        "num_negatives": positive_int(10),
        "contrastive_weight": non_negative(0.3),
        "invariance_weight": non_negative(5.0),
        "kl_form": choice("k1", "k1", "k2"),
        "base_loss": choice("relic", "relic", "simclr", "byol"),
        "max_nonfinite_steps": positive_int(10, allow_zero=True),
    }

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)
        kw = cfg.method_kwargs
        self.projector = byol_mlp(self.features_dim, kw.proj_hidden_dim, kw.proj_output_dim)
        self.momentum_projector = byol_mlp(self.features_dim, kw.proj_hidden_dim, kw.proj_output_dim)
        initialize_momentum_params(self.projector, self.momentum_projector)
        self.predictor = byol_mlp(kw.proj_output_dim, kw.pred_hidden_dim, kw.proj_output_dim)
        split = resolve_split(cfg)
        self.register_buffer("labelled_mask", None if split is None else split.mask())
        self.seed = int(omegaconf.OmegaConf.select(cfg, "seed", default=5))
        self.nonfinite = NonFiniteGuard(kw.max_nonfinite_steps)
        self.norm_stats = NormStatistics()

    @classmethod
    def add_and_assert_specific_cfg(cls, cfg: omegaconf.DictConfig) -> omegaconf.DictConfig:
        cfg = BaseMomentumMethod.add_and_assert_specific_cfg(cfg)
        apply_options(cfg, "method_kwargs", cls.OPTIONS)
        if cfg.method_kwargs.temperature <= 0:
            raise ValueError(f"method_kwargs.temperature = {cfg.method_kwargs.temperature}: expected > 0")
        global_batch = global_batch_size(cfg)
        if cfg.method_kwargs.num_negatives > global_batch - 1:
            raise ValueError(
                f"method_kwargs.num_negatives = {cfg.method_kwargs.num_negatives}: expected at most the global "
                f"batch size - 1 = {global_batch - 1}"
            )
        if cfg.data.num_large_crops < 2:
            raise ValueError(
                f"{cfg.method} needs at least 2 large crops (got data.num_large_crops = "
                f"{cfg.data.num_large_crops}); check the augmentations' num_crops"
            )
        return cfg

    @property
    def learnable_params(self) -> List[dict]:
        return super().learnable_params + [
            {"name": "projector", "params": self.projector.parameters()},
            {"name": "predictor", "params": self.predictor.parameters()},
        ]

    @property
    def momentum_pairs(self) -> List[Tuple[Any, Any]]:
        return super().momentum_pairs + [(self.projector, self.momentum_projector)]

    def forward(self, X: torch.Tensor) -> Dict[str, Any]:
        out = super().forward(X)
        z = self.projector(out["feats"])
        out.update({"z": z, "p": self.predictor(z)})
        return out

    def multicrop_forward(self, X: torch.Tensor) -> Dict[str, Any]:
        out = super().multicrop_forward(X)
        z = self.projector(out["feats"])
        out.update({"z": z, "p": self.predictor(z)})
        return out

    @torch.no_grad()
    def momentum_forward(self, X: torch.Tensor) -> Dict[str, Any]:
        out = super().momentum_forward(X)
        out.update({"z": self.momentum_projector(out["feats"])})
        return out

    def base_training_step(self, X: torch.Tensor, targets: torch.Tensor) -> Dict[str, Any]:
        out = self(X)
        out.update(masked_classification(out["logits"], targets))
        return out

    def _shared_step_momentum(self, X: torch.Tensor, targets: torch.Tensor) -> Dict[str, Any]:
        out = self.momentum_forward(X)
        if self.momentum_classifier is not None:
            logits = self.momentum_classifier(out["feats"])
            out.update({"logits": logits, **masked_classification(logits, targets)})
        return out

    def visible_targets(self, indexes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The targets a semi-supervised method may see: -1 for unlabelled images."""
        if self.labelled_mask is None:
            return targets
        return torch.where(self.labelled_mask[indexes], targets, torch.full_like(targets, -1))

    def step_generator(self, stream: int) -> torch.Generator:
        """A generator seeded by (seed, global step, stream): the same draw on every rank and on
        a resumed run; one stream per random choice of the step."""
        return torch.Generator().manual_seed(mix_seed(self.seed, int(self.global_step), stream))

    def ssl_terms(self, out: Dict[str, Any], batch: Dict[str, torch.Tensor]) -> Dict[str, Tuple[torch.Tensor, float]]:
        """Named loss terms with their weights. ``batch`` holds the global (gathered) step
        inputs: online [V_on, B, D], target [V_t, B, D], negatives [B, n], ids, visible, hidden."""
        kw = self.cfg.method_kwargs
        if kw.base_loss == "simclr":
            z = torch.cat(out["z"])
            return {"simclr": (simclr_loss_func(z, batch["local_ids"].repeat(self.num_crops), kw.temperature), 1.0)}
        if kw.base_loss == "byol":
            loss = sum(
                byol_loss_func(out["p"][v2], out["momentum_z"][v1])
                for v1 in range(self.num_large_crops)
                for v2 in range(self.num_crops)
                if v2 != v1
            )
            return {"byol": (loss, 1.0)}
        contrastive, invariance = relic_loss(
            batch["online"], batch["target"], batch["negatives"], kw.temperature, kw.kl_form
        )
        return {
            "relic_contrastive": (contrastive, kw.contrastive_weight),
            "relic_invariance": (invariance, kw.invariance_weight),
        }

    def training_step(self, batch: Sequence[Any], batch_idx: int) -> torch.Tensor:
        indexes, X, targets = batch
        visible = self.visible_targets(indexes, targets)
        if self.nonfinite.enabled:
            self.norm_stats.save(self)
        out = super().training_step([indexes, X, visible], batch_idx)
        online = gather_views(torch.stack(out["p"]), with_grad=True)
        target = gather_views(torch.stack(out["momentum_z"]), with_grad=False)
        ids, visible_g, hidden = (concat_all_gather_no_grad(t) for t in (indexes, visible, targets))
        negatives = sample_negatives(
            target.size(1), self.cfg.method_kwargs.num_negatives, self.step_generator(0)
        ).to(target.device)
        step = {"online": online, "target": target, "negatives": negatives, "ids": ids,
                "visible": visible_g, "hidden": hidden, "local_ids": indexes}
        terms = self.ssl_terms(out, step)
        ssl_loss = sum(weight * value for value, weight in terms.values())
        metrics = {f"train_{name}": value for name, (value, _) in terms.items()}
        metrics["train_ssl_loss"] = ssl_loss
        loss = ssl_loss + out["loss"]
        if self.nonfinite.enabled:
            skip = self.nonfinite.skip(finite_on_all_ranks(loss))
            self.log("train_nonfinite_steps", float(self.nonfinite.total))
            if skip:  # undo the forward's batch-norm statistics; without a loss Lightning skips backward,
                self.norm_stats.restore()  # and without gradients the optimiser changes nothing
                return None
        # relic terms come from the gathered global batch, equal on every rank: no sync_dist (on
        # XLA a per-step host rendezvous per metric); solo-learn's simclr/byol losses are per rank
        self.log_dict(metrics, on_epoch=True, sync_dist=self.cfg.method_kwargs.base_loss != "relic")
        self.after_loss(step)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if not outputs:  # a skipped non-finite step (training_step returned None): no EMA update
            self.last_step = self.trainer.global_step
            return
        super().on_train_batch_end(outputs, batch, batch_idx)

    def on_save_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        checkpoint["nonfinite_steps"] = self.nonfinite.state_dict()

    def on_load_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        if "nonfinite_steps" in checkpoint:
            self.nonfinite.load_state_dict(checkpoint["nonfinite_steps"])

    def after_loss(self, step: Dict[str, torch.Tensor]) -> None:
        """Hook run after the loss of a training step (SemPPL enqueues the labelled targets)."""
