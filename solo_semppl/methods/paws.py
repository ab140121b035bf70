"""PAWS as a solo-learn method (``method: paws``; Assran et al. 2021, "Semi-Supervised Learning of
Visual Features by Non-Parametrically Predicting View Assignments with Support Samples")."""
from typing import Any, Sequence

import omegaconf
import torch
from solo.utils.misc import concat_all_gather_no_grad

from solo_semppl.losses import paws_loss, smoothed_one_hot
from solo_semppl.methods.heads import mlp
from solo_semppl.methods.labelled_share import LabelledShareMethod
from solo_semppl.methods.semi import gather_views
from solo_semppl.options import flag, in_unit_interval, positive


class PAWS(LabelledShareMethod):
    """Every crop of an unlabelled image is classified by soft nearest neighbours among the
    labelled support crops of the global batch; its target is the sharpened prediction of the
    image's other large crops (``losses.paws_loss``); mean-entropy maximisation keeps the mean
    prediction spread over the classes.

    The support set is the labelled share of the batch: the sampler puts
    ``semi_supervised.labelled_per_batch`` labelled images first in each rank's batch
    (``balanced_labelled: true`` makes them class balanced, as the official support sampler
    does); their large crops, with label-smoothed one-hot labels, are the support embeddings;
    the other images are the anchors. Decision: the official code forwards a separate support
    batch on top of the unlabelled one; here the support rides in the batch, so at an equal
    batch size a PAWS step costs what a SimCLR step does, and sees fewer unlabelled images.
    Support and anchor embeddings are the projector's output (the official CIFAR-10 recipe,
    ``use_pred_head: false``; its ImageNet recipe's prediction head is not implemented).

    method_kwargs (each validated):
        proj_hidden_dim (int, 2048), proj_output_dim (int, 128): the projector, 3 layers
            (Linear BN ReLU) x 2, Linear, as the official one.
        temperature (float, 0.1): the soft nearest-neighbour temperature.
        sharpen_temperature (float, 0.25): the targets' sharpening temperature.
        label_smoothing (float in [0, 1], 0.1): of the support labels.
        me_max (bool, true): add the mean-entropy maximisation term.
        max_nonfinite_steps (int, 10): the NaN/inf guard (``solo_semppl.methods.semi``).
    Needs a ``semi_supervised`` split and ``semi_supervised.labelled_per_batch`` > 0 (at most the
    labelled set). Logged: train_paws, train_me_max, train_ssl_loss.
    """

    OPTIONS = {
        **LabelledShareMethod.OPTIONS,
        "sharpen_temperature": positive(0.25),
        "label_smoothing": in_unit_interval(0.1),
        "me_max": flag(True),
    }

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)
        kw = cfg.method_kwargs
        self.projector = mlp(self.features_dim, kw.proj_hidden_dim, kw.proj_output_dim, layers=3)
        self.init_semi_supervised(cfg)
        self.support_per_rank = cfg.semi_supervised.labelled_per_batch

    @classmethod
    def add_and_assert_specific_cfg(cls, cfg: omegaconf.DictConfig) -> omegaconf.DictConfig:
        cfg = super().add_and_assert_specific_cfg(cfg)
        if cfg.data.num_large_crops < 2:
            raise ValueError(f"data.num_large_crops = {cfg.data.num_large_crops}: paws needs at least 2 (targets come from the other large crops)")
        return cfg

    def support_rows(self, per_rank: int, total: int) -> torch.Tensor:
        """[total] bool of the gathered batch: the first ``support_per_rank`` rows of every rank."""
        return (torch.arange(total, device=self.device) % per_rank) < self.support_per_rank

    def training_step(self, batch: Sequence[Any], batch_idx: int) -> torch.Tensor:
        kw, large = self.cfg.method_kwargs, self.num_large_crops
        # parent step: every crop through backbone and projector, online probe on labelled images
        out, visible = self.labelled_base_step(batch, batch_idx)
        z = gather_views(torch.stack(out["z"]), with_grad=True)
        visible = concat_all_gather_no_grad(visible)
        is_support = self.support_rows(batch[0].size(0), z.size(1))
        # support: the large crops of the labelled share, with smoothed one-hot labels (hidden: zeros)
        supports = z[:large, is_support].flatten(0, 1)
        labels = smoothed_one_hot(visible[is_support], self.num_classes, kw.label_smoothing).repeat(large, 1)
        # PAWS: each anchor crop's soft-NN prediction towards its other large crops' sharpened ones
        anchors = z[:, ~is_support]
        paws, me_max = paws_loss(anchors, supports, anchors[:large].detach(), supports.detach(), labels,
                                 kw.temperature, kw.sharpen_temperature)
        ssl_loss = paws + me_max if kw.me_max else paws
        # NaN/inf guard, log, return
        return self.finish_step(ssl_loss, out["loss"], {"paws": paws, "me_max": me_max})
