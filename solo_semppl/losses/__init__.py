"""Framework-free losses: ReLICv2, SemPPL's semantic-positive terms, SimCLR's NT-Xent, BYOL's
regression, PAWS' soft nearest-neighbour loss and SimCLRv2's distillation."""
from solo_semppl.losses.contrastive import byol_loss, nt_xent_loss
from solo_semppl.losses.distill import distillation_loss
from solo_semppl.losses.negatives import sample_negatives
from solo_semppl.losses.paws import paws_loss, smoothed_one_hot
from solo_semppl.losses.relic import relic_loss
from solo_semppl.losses.semantic import semantic_positive_loss, semantic_regression_loss

__all__ = ["byol_loss", "distillation_loss", "nt_xent_loss", "paws_loss", "relic_loss", "sample_negatives", "semantic_positive_loss", "semantic_regression_loss", "smoothed_one_hot"]
