"""Hyperspectral unmixing around any factorization: evaluation against ground truth and
library labels (NumPy/SciPy only; the numbers themselves come from :mod:`mfcli.metrics`)."""
