"""The in-memory engine on a GPU: X as a torch tensor on a CUDA device (``--device cuda``).

The two products of every iteration (W^T X and X H^T) and the norms run on the device; the
factors stay NumPy arrays on the host and only they cross the bus (r x n and m x r per
iteration), so every solver runs unchanged. The working dtype is X's (float32 is what GPUs are
fast at). TF32 is left as torch sets it (off for matmul), so products keep full float32 precision.

Tested on CPU tensors (``device="cpu"``), where it gives the NumPy results; it has not been
run on a real GPU in this project's tests (none was available), so treat ``--device cuda`` as
untested there.
"""

from __future__ import annotations

import numpy as np

from mfcli.errors import MissingDependencyError, ParameterError


def import_torch():
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "deep", "--device cuda") from None
    return torch


def check_device(device: str) -> str:
    """``cuda`` or ``cuda:N`` where torch sees such a device, else a one-line ParameterError."""
    torch = import_torch()
    if not device.startswith("cuda"):
        raise ParameterError(f"unknown device '{device}'; use cpu (NumPy) or cuda, cuda:N (a GPU through torch)")
    if not torch.cuda.is_available():
        raise ParameterError(f"--device {device}: torch sees no CUDA GPU (torch {torch.__version__}, "
                             "torch.cuda.is_available() is False); use --device cpu")
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise ParameterError(f"--device {device}: there are {torch.cuda.device_count()} CUDA device(s)")
    return device


class TorchMatrix:
    """:class:`~mfcli.models.matrix.DataMatrix` over a torch tensor on ``device``."""

    engine = "memory"

    def __init__(self, X: np.ndarray, device: str = "cuda"):
        torch = import_torch()
        X = np.asarray(X)
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        self.device = torch.device(device)
        self.X = torch.as_tensor(np.ascontiguousarray(X), device=self.device)
        self.shape = tuple(int(s) for s in X.shape)
        self.dtype = np.dtype(X.dtype)
        self.clip_negative = False
        self._sq_norm: float | None = None
        self._col_sq_norms: np.ndarray | None = None

    def _tensor(self, array: np.ndarray):
        torch = import_torch()
        return torch.as_tensor(np.ascontiguousarray(array, dtype=self.dtype), device=self.device)

    @staticmethod
    def _host(tensor) -> np.ndarray:
        return tensor.detach().cpu().numpy()

    def WtX(self, W: np.ndarray) -> np.ndarray:
        return self._host(self._tensor(W.T) @ self.X)

    def XHt(self, H: np.ndarray) -> np.ndarray:
        return self._host(self.X @ self._tensor(H).T)

    def col_sq_norms(self) -> np.ndarray:
        if self._col_sq_norms is None:
            self._col_sq_norms = self._host((self.X * self.X).sum(dim=0))
        return self._col_sq_norms

    def sq_norm(self) -> float:
        if self._sq_norm is None:
            self._sq_norm = float(self.col_sq_norms().sum(dtype=np.float64))
        return self._sq_norm

    def columns(self, idx: np.ndarray) -> np.ndarray:
        torch = import_torch()
        index = torch.as_tensor(np.asarray(idx, dtype=np.int64).ravel(), device=self.device)
        return self._host(self.X[:, index])

    def scan(self) -> dict:
        """NaN, Inf and negative counts, the minimum and the maximum, counted on the device (the input
        checks); with ``clip_negative`` the tensor's negative values are then set to 0."""
        torch = import_torch()
        X = self.X
        finite = torch.isfinite(X)
        counts = {"nan": int(torch.isnan(X).sum()), "inf": int(torch.isinf(X).sum()),
                  "negative": int((X < 0).sum()),
                  "minimum": float(X[finite].min()) if bool(finite.any()) else float("nan"),
                  "maximum": float(X[finite].max()) if bool(finite.any()) else float("nan")}
        if self.clip_negative and counts["negative"]:
            self.X = torch.clamp(X, min=0)
        self._sq_norm = self._col_sq_norms = None
        return counts
