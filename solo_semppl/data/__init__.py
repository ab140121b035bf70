"""Data utilities: labelled splits, the embedded digits dataset, the labelled-share sampler."""
