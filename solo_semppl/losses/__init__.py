"""Framework-free losses: ReLICv2 and SemPPL's semantic-positive terms."""
from solo_semppl.losses.negatives import sample_negatives
from solo_semppl.losses.relic import relic_loss
from solo_semppl.losses.semantic import semantic_positive_loss, semantic_regression_loss

__all__ = ["relic_loss", "sample_negatives", "semantic_positive_loss", "semantic_regression_loss"]
