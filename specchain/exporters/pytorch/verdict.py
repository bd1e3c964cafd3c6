"""The verdict of ``verify``: per-tensor errors of the exported module against the spec, the
tolerances they were held to, and ``PASS`` or ``FAIL`` naming the worst tensor.

A tensor passes when every element satisfies ``|spec - torch| <= atol + rtol * |torch|`` (as
``torch.testing.assert_close`` and ``np.allclose`` check), with the numerics contract's ``(rtol,
atol)`` for its dtype unless others are given. NaN never equals NaN; equal infinities match.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from specchain.exporters.pytorch.emitters import ExportError
from specchain.numerics import contract_tolerances


class VerificationError(ExportError, AssertionError):
    """The exported module does not match the spec within tolerance; the message is the report.

    An ``AssertionError`` (as ``torch.testing.assert_close`` raises) and a ``SpecError``."""


@attrs.frozen(eq=False)
class TensorCheck:
    """One compared tensor (an output, an input gradient, a parameter gradient or the loss).

    ``max_abs`` is the largest ``|spec - torch|``, ``max_rel`` the largest ``|spec - torch| /
    |torch|``, ``worst`` the largest ``|spec - torch| / (atol + rtol * |torch|)``: at most 1 passes.
    """

    name: str
    dtype: np.dtype[Any]
    max_abs: float
    max_rel: float
    rtol: float
    atol: float
    worst: float
    delta: np.ndarray = attrs.field(repr=False)  # |spec - torch| elementwise, any shape
    scale: np.ndarray = attrs.field(repr=False)  # |torch| elementwise, delta's shape

    @property
    def ok(self) -> bool:
        """Every element within ``atol + rtol * |torch|`` (False on a NaN difference)."""
        return bool(self.worst <= 1.0)

    def within(self, rtol: float, atol: float) -> bool:
        """Every element within ``atol + rtol * |torch|`` for the given tolerances."""
        return bool(np.all(self.delta <= atol + rtol * self.scale))


def check_tensor(
    name: str,
    ours: np.ndarray,
    theirs: np.ndarray,
    tolerances: tuple[float, float] | None = None,
) -> TensorCheck:
    """Compare the spec's array ``ours`` with the exported module's ``theirs`` (same shape, never
    broadcast), at ``tolerances = (rtol, atol)`` or the contract's for ``ours.dtype``."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if ours.shape != theirs.shape:
        raise ExportError(
            f"{name}: specchain has shape {list(ours.shape)}, the exported module "
            f"{list(theirs.shape)}"
        )
    rtol, atol = contract_tolerances(ours.dtype) if tolerances is None else tolerances
    a, b = ours.astype(np.float64), theirs.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        delta = np.where(a == b, 0.0, np.abs(a - b))  # equal infinities: 0; NaN stays NaN
        scale = np.abs(b)
        rel = np.where(delta == 0, 0.0, delta / scale)
        ratio = np.where(delta == 0, 0.0, delta / (atol + rtol * scale))
    empty = delta.size == 0
    return TensorCheck(
        name=name,
        dtype=ours.dtype,
        max_abs=0.0 if empty else float(np.max(delta)),
        max_rel=0.0 if empty else float(np.max(rel)),
        rtol=rtol,
        atol=atol,
        worst=0.0 if empty else float(np.max(ratio)),
        delta=delta,
        scale=scale,
    )


@attrs.frozen(eq=False)
class VerifyReport:
    """Every compared tensor by name (``output[0]``, ``input_grad[0]``, each parameter's
    ``state_dict`` key, ``loss``), and the loss values ``(spec, torch)`` when a loss was given.

    ``ok`` is the verdict; ``str(report)`` the table with a ``PASS``/``FAIL`` line;
    ``assert_ok()`` raises ``VerificationError`` on ``FAIL``."""

    tensors: dict[str, TensorCheck]
    loss: tuple[float, float] | None = None

    @property
    def ok(self) -> bool:
        """Every tensor within its tolerances (an empty comparison passes)."""
        return all(check.ok for check in self.tensors.values())

    @property
    def diffs(self) -> dict[str, tuple[float, float]]:
        """``{name: (max_abs, max_rel)}``."""
        return {name: (c.max_abs, c.max_rel) for name, c in self.tensors.items()}

    @property
    def max_abs(self) -> float:
        """The largest absolute difference over every tensor."""
        return max((c.max_abs for c in self.tensors.values()), default=0.0)

    @property
    def worst(self) -> TensorCheck | None:
        """The tensor with the largest ``diff/tol`` (a NaN difference is worst of all)."""
        return max(self.tensors.values(), key=_badness, default=None)

    def within(self, rtol: float, atol: float) -> bool:
        """Every tensor within ``atol + rtol * |torch|`` elementwise, for these tolerances."""
        return all(check.within(rtol, atol) for check in self.tensors.values())

    def assert_ok(self) -> VerifyReport:
        """Raise ``VerificationError`` (the whole table) unless ``ok``; return the report."""
        if not self.ok:
            raise VerificationError(str(self))
        return self

    def verdict(self) -> str:
        """``PASS: ...`` or ``FAIL: ... worst: NAME ...``, one line."""
        worst = self.worst
        if worst is None:
            return "PASS: nothing to compare"
        failed = sum(not c.ok for c in self.tensors.values())
        if failed == 0:
            return (
                f"PASS: all {len(self.tensors)} tensors within tolerance; worst: {worst.name} "
                f"at {worst.worst:.2g} of its tolerance"
            )
        return (
            f"FAIL: {failed} of {len(self.tensors)} tensors outside tolerance; worst: "
            f"{worst.name}, max|diff| {worst.max_abs:.3e}, {worst.worst:.3g} times its tolerance "
            f"(atol {worst.atol:g} + rtol {worst.rtol:g} * |torch|)"
        )

    def __str__(self) -> str:
        header = ("tensor", "dtype", "max|diff|", "max rel", "rtol", "atol", "diff/tol", "")
        rows = [header] + [
            (
                c.name,
                str(c.dtype),
                f"{c.max_abs:.3e}",
                f"{c.max_rel:.3e}",
                f"{c.rtol:g}",
                f"{c.atol:g}",
                f"{c.worst:.3g}",
                "ok" if c.ok else "FAIL",
            )
            for c in self.tensors.values()
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        title = "specchain vs exported torch module (pass: |diff| <= atol + rtol * |torch|):"
        if self.loss is not None:
            lines.append(f"loss value: {self.loss[0]!r} (specchain), {self.loss[1]!r} (torch)")
        return title + "\n  " + "\n  ".join(lines) + "\n" + self.verdict()


def _badness(check: TensorCheck) -> float:
    return float("inf") if np.isnan(check.worst) else check.worst
