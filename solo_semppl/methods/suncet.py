"""SuNCEt as a solo-learn method (``method: suncet``): SimCLR plus a supervised noise-contrastive
term over the labelled images of each batch (Assran et al. 2020, "Recovering Petaflops in
Contrastive Semi-Supervised Learning of Visual Representations")."""
from typing import Any, Sequence

import omegaconf
import torch
import torch.nn as nn
from solo.utils.misc import concat_all_gather_no_grad

from solo_semppl.losses import nt_xent_loss
from solo_semppl.methods.labelled_share import LabelledShareMethod
from solo_semppl.methods.semi import gather_views
from solo_semppl.options import non_negative, positive, positive_int


class SuNCEt(LabelledShareMethod):
    """SimCLR's NT-Xent over every crop of the global batch, plus SuNCEt's term: for a labelled
    anchor crop, the crops of the other labelled images of its class (and its own other crops)
    are the positives, all other labelled crops the candidates; -log of the positives' softmax
    mass, over the labelled images only (``losses.nt_xent_loss`` with the labels as keys).

    Loss: L_simclr + supervised_weight * L_suncet (the official code adds them with weight 1,
    and drops L_suncet after ``supervised_epochs``).

    method_kwargs (each validated):
        proj_hidden_dim (int, 2048), proj_output_dim (int, 128): SimCLR's projector
            (Linear, ReLU, Linear, as solo-learn's ``simclr``).
        temperature (float, 0.1): SimCLR's temperature.
        supervised_temperature (float, 0.1): SuNCEt's temperature.
        supervised_weight (float, 1.0): weight of the SuNCEt term.
        supervised_epochs (int, null): epochs with the SuNCEt term (null: all).
        max_nonfinite_steps (int, 10): the NaN/inf guard (``solo_semppl.methods.semi``).
    Needs a ``semi_supervised`` split and ``semi_supervised.labelled_per_batch`` > 0, so that every
    batch carries labelled images (``balanced_labelled: true`` makes them class balanced, as the
    official support batches are). Logged: train_simclr, train_suncet, train_ssl_loss.
    """

    OPTIONS = {
        **LabelledShareMethod.OPTIONS,
        "supervised_temperature": positive(0.1),
        "supervised_weight": non_negative(1.0),
        "supervised_epochs": positive_int(None, allow_zero=True),
    }

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)
        kw = cfg.method_kwargs
        self.projector = nn.Sequential(
            nn.Linear(self.features_dim, kw.proj_hidden_dim), nn.ReLU(), nn.Linear(kw.proj_hidden_dim, kw.proj_output_dim)
        )
        self.init_semi_supervised(cfg)

    def training_step(self, batch: Sequence[Any], batch_idx: int) -> torch.Tensor:
        kw = self.cfg.method_kwargs
        # parent step: every crop through backbone and projector, online probe on labelled images
        out, visible = self.labelled_base_step(batch, batch_idx)
        z = gather_views(torch.stack(out["z"]), with_grad=True)
        ids, visible = concat_all_gather_no_grad(batch[0]), concat_all_gather_no_grad(visible)
        # SimCLR: the other crops of the same image are the positives
        simclr = nt_xent_loss(z, ids, kw.temperature)
        # SuNCEt: over the labelled images, the crops of the same class are the positives
        suncet = nt_xent_loss(z, visible, kw.supervised_temperature, mask=visible >= 0)
        weight = kw.supervised_weight
        if kw.supervised_epochs is not None and self.current_epoch >= kw.supervised_epochs:
            weight = 0.0
        # NaN/inf guard, log, return
        return self.finish_step(simclr + weight * suncet, out["loss"], {"simclr": simclr, "suncet": suncet})
