"""Evaluation on the labelled subset: fine-tuning, linear probe, k-NN (SPEC 10)."""
