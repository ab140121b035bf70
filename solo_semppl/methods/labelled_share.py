"""The base of the semi-supervised rivals that learn from the labelled share of every batch
(``suncet``, ``paws``): a split and ``semi_supervised.labelled_per_batch`` > 0 are required, a
projector runs on every crop, LARS is available.

method_kwargs shared by them (validated with each method's own, ``OPTIONS``):
    proj_hidden_dim (int, 2048), proj_output_dim (int, 128): the projector's widths.
    temperature (float > 0, 0.1): the method's softmax temperature.
    max_nonfinite_steps (int, 10): the NaN/inf guard (``solo_semppl.methods.semi``).
"""
from typing import Any, Dict, List

import omegaconf
import torch
from solo.methods.base import BaseMethod

from solo_semppl.lars import LARS
from solo_semppl.methods.semi import SemiSupervised
from solo_semppl.options import apply_options, positive, positive_int


def require_labelled_share(cfg: omegaconf.DictConfig) -> None:
    """Methods that learn from the labelled images of every batch (suncet, paws) need
    ``semi_supervised.labelled_per_batch`` > 0."""
    share = omegaconf.OmegaConf.select(cfg, "semi_supervised.labelled_per_batch", default=0) or 0
    if share <= 0:
        raise ValueError(
            f"semi_supervised.labelled_per_batch = {share}: {cfg.method} needs labelled images in every batch, "
            "expected an int >= 1 (with semi_supervised.balanced_labelled: true for class-balanced ones)"
        )


class ProjectedCrops:
    """Mixin for a solo-learn ``BaseMethod`` with a ``self.projector``: every crop's outputs get
    ``z = projector(feats)`` and the projector is trained (as solo-learn's ``simclr``). """

    @property
    def learnable_params(self) -> List[dict]:
        return super().learnable_params + [{"name": "projector", "params": self.projector.parameters()}]

    def forward(self, X: torch.Tensor) -> Dict[str, Any]:
        out = super().forward(X)
        out["z"] = self.projector(out["feats"])
        return out

    def multicrop_forward(self, X: torch.Tensor) -> Dict[str, Any]:
        out = super().multicrop_forward(X)
        out["z"] = self.projector(out["feats"])
        return out


class LabelledShareMethod(SemiSupervised, ProjectedCrops, BaseMethod):
    """Subclasses build ``self.projector`` and call ``init_semi_supervised(cfg)``."""

    _OPTIMIZERS = {**BaseMethod._OPTIMIZERS, "lars": LARS}
    NEEDS_SPLIT = True
    OPTIONS = {
        **SemiSupervised.OPTIONS,
        "proj_hidden_dim": positive_int(2048),
        "proj_output_dim": positive_int(128),
        "temperature": positive(0.1),
    }

    @classmethod
    def add_and_assert_specific_cfg(cls, cfg: omegaconf.DictConfig) -> omegaconf.DictConfig:
        cfg = BaseMethod.add_and_assert_specific_cfg(cfg)
        apply_options(cfg, "method_kwargs", cls.OPTIONS)
        require_labelled_share(cfg)
        return cfg
