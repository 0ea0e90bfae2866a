"""Rectified's teaching library: activations, networks, gradient checks, data, training, diagnostics, plots."""

__version__ = "0.1.0"
