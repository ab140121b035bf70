"""ReLICv2 as a solo-learn method (``method: relic``), the base that SemPPL extends."""
from typing import Any, Dict, List, Sequence, Tuple

import omegaconf
import torch
from solo.methods.base import BaseMomentumMethod
from solo.utils.misc import concat_all_gather_no_grad
from solo.utils.momentum import initialize_momentum_params

from solo_semppl.lars import LARS
from solo_semppl.methods.heads import mlp
from solo_semppl.methods.semi import SemiSupervised, gather_views, global_batch_size, masked_classification
from solo_semppl.options import Option, apply_options, choice, non_negative, positive, positive_int
from solo_semppl.step import StepConfig, StepInputs, semppl_step


class ReLIC(SemiSupervised, BaseMomentumMethod):
    """ReLICv2 (Tomasev et al. 2022): contrastive loss with sampled negatives plus a KL
    invariance term, online views (large and small) against EMA-target large views. The loss is
    ``solo_semppl.step.semppl_step`` without semantic positives.

    method_kwargs (every key validated; an unknown key is an error):
        proj_hidden_dim (int, 4096), proj_output_dim (int, 256), pred_hidden_dim (int, 4096):
            BYOL-style projector / predictor sizes.
        proj_layers (int, 2): projector depth; 3 is SimCLRv2's head (fine-tune from its first
            layer with ``solo-semppl eval finetune --from-layer projector1``).
        temperature (float, 0.2): softmax temperature tau.
        num_negatives (int, 10): negatives per anchor, drawn from the (global) batch once a step.
        contrastive_weight (float, 0.3): c, the weight of the contrastive terms.
        invariance_weight (float, 5.0): lambda, the weight of the KL invariance terms.
        kl_form (str, "k1"): invariance reading, "k1" (within the pair) or "k2" (across pairs).
        base_loss (str, "relic"): "relic", or "simclr" (NT-Xent on the online projections) /
            "byol" (regression of the predictions on the targets), for SemPPL's base-loss ablation.
        max_nonfinite_steps (int, 10): the NaN/inf guard (``solo_semppl.methods.semi``).
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
        **SemiSupervised.OPTIONS,
        "proj_hidden_dim": positive_int(4096),
        "proj_output_dim": positive_int(256),
        "pred_hidden_dim": positive_int(4096),
        "proj_layers": Option(2, (int,), lambda v: v in (2, 3), "2 or 3"),
        "temperature": positive(0.2),
        "num_negatives": positive_int(10),
        "contrastive_weight": non_negative(0.3),
        "invariance_weight": non_negative(5.0),
        "kl_form": choice("k1", "k1", "k2"),
        "base_loss": choice("relic", "relic", "simclr", "byol"),
    }

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)
        kw = cfg.method_kwargs
        self.projector = mlp(self.features_dim, kw.proj_hidden_dim, kw.proj_output_dim, kw.proj_layers)
        self.momentum_projector = mlp(self.features_dim, kw.proj_hidden_dim, kw.proj_output_dim, kw.proj_layers)
        initialize_momentum_params(self.projector, self.momentum_projector)
        self.predictor = mlp(kw.proj_output_dim, kw.pred_hidden_dim, kw.proj_output_dim)
        self.init_semi_supervised(cfg)
        self._step_config = None

    @classmethod
    def add_and_assert_specific_cfg(cls, cfg: omegaconf.DictConfig) -> omegaconf.DictConfig:
        cfg = BaseMomentumMethod.add_and_assert_specific_cfg(cfg)
        apply_options(cfg, "method_kwargs", cls.OPTIONS)
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

    def _shared_step_momentum(self, X: torch.Tensor, targets: torch.Tensor) -> Dict[str, Any]:
        out = self.momentum_forward(X)
        if self.momentum_classifier is not None:
            logits = self.momentum_classifier(out["feats"])
            out.update({"logits": logits, **masked_classification(logits, targets)})
        return out

    def step_config(self) -> StepConfig:
        """The step's settings from ``method_kwargs``, built on the first step (the device is
        known by then) and kept: reading an omegaconf node every step costs more than the loss's
        small ops."""
        if self._step_config is None:
            self._step_config = StepConfig.from_kwargs(self.cfg.method_kwargs, **self.step_settings())
        return self._step_config

    def step_settings(self) -> Dict[str, Any]:
        return {"num_classes": self.num_classes}

    def global_inputs(self, out: Dict[str, Any], batch: Sequence[Any], visible: torch.Tensor) -> StepInputs:
        """The step's inputs gathered over ranks: online predictions of every crop (with
        gradient), target projections of the large crops, ids, visible and hidden labels."""
        indexes, _, targets = batch
        ids, visible, hidden = (concat_all_gather_no_grad(t) for t in (indexes, visible, targets))
        projections = None
        if self.step_config().base_loss == "simclr":
            projections = gather_views(torch.stack(out["z"]), with_grad=True)
        return StepInputs(
            online=gather_views(torch.stack(out["p"]), with_grad=True),
            target=gather_views(torch.stack(out["momentum_z"]), with_grad=False),
            ids=ids, visible=visible, hidden=hidden, projections=projections,
        )

    def training_step(self, batch: Sequence[Any], batch_idx: int) -> torch.Tensor:
        # parent step: every crop online, the large crops through the EMA target, online probe
        out, visible = self.labelled_base_step(batch, batch_idx)
        inputs = self.global_inputs(out, batch, visible)
        # ReLICv2's contrastive and invariance terms on the global batch (solo_semppl.step)
        result = semppl_step(inputs, self.step_config(), self.step_generator)
        # NaN/inf guard, log, return
        return self.finish_step(result.loss, out["loss"], {**result.terms, **result.telemetry})

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if not outputs:  # a skipped non-finite step (training_step returned None): no EMA update
            self.last_step = self.trainer.global_step
            return
        super().on_train_batch_end(outputs, batch, batch_idx)
