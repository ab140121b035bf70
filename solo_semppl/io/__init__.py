"""Torch-free file helpers: atomic writes and JSON files (the bottom layer)."""
