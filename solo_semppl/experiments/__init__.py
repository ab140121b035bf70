"""Experiments built from the pieces: side-by-side comparison, ablations, the demo."""
