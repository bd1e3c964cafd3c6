"""Colours: a spec is drawn in the palette of the family its class declares
(``class LSTM(NNModuleSpec, family="recurrent")``).

The built-in families have fixed palettes. Any other family (a user's ``family="normalization"``)
gets one of ``EXTRA_PALETTES``, picked by a SHA-256 of its name: the same colour in every run
and process, and never one of the built-in families' colours. A class that declares no family is
drawn in ``DEFAULT_PALETTE`` grey.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from specchain.spec import NNModuleSpec

FONT = "Helvetica"
TEXT = "#0f172a"
MUTED = "#64748b"
EDGE = "#94a3b8"
IO_COLORS = ("#f1f5f9", "#475569")  # fill, border of the model's input and output


class Palette(NamedTuple):
    """The colours of one family: a box's ``fill`` and ``border``, and the ``cluster`` fill of
    an expanded composite spec (whose border is ``border``)."""

    fill: str
    border: str
    cluster: str


DEFAULT_PALETTE = Palette("#f8fafc", "#475569", "#fafafa")

FAMILY_COLORS = {  # keyed by the family a spec class declares
    "recurrent": Palette("#dbeafe", "#2563eb", "#eff6ff"),
    "linear": Palette("#dcfce7", "#16a34a", DEFAULT_PALETTE.cluster),
    "embedding": Palette("#ccfbf1", "#0d9488", DEFAULT_PALETTE.cluster),
    "activation": Palette("#fef3c7", "#d97706", DEFAULT_PALETTE.cluster),
    "dropout": Palette("#f1f5f9", "#64748b", DEFAULT_PALETTE.cluster),
    "sequence": Palette("#ede9fe", "#7c3aed", DEFAULT_PALETTE.cluster),
    "attention": Palette("#fce7f3", "#db2777", "#fdf2f8"),
}

EXTRA_PALETTES = (  # for families outside FAMILY_COLORS; never reordered (colours would move)
    Palette("#fee2e2", "#dc2626", "#fef2f2"),  # red
    Palette("#ffedd5", "#ea580c", "#fff7ed"),  # orange
    Palette("#fef9c3", "#ca8a04", "#fefce8"),  # yellow
    Palette("#ecfccb", "#65a30d", "#f7fee7"),  # lime
    Palette("#d1fae5", "#059669", "#ecfdf5"),  # emerald
    Palette("#cffafe", "#0891b2", "#ecfeff"),  # cyan
    Palette("#e0f2fe", "#0284c7", "#f0f9ff"),  # sky
    Palette("#e0e7ff", "#4f46e5", "#eef2ff"),  # indigo
    Palette("#fae8ff", "#c026d3", "#fdf4ff"),  # fuchsia
    Palette("#ffe4e6", "#e11d48", "#fff1f2"),  # rose
)


def family_palette(family: str | None) -> Palette:
    """The palette of ``family``: its own when built in, a stable extra one picked by its name
    otherwise, and ``DEFAULT_PALETTE`` for ``None`` (a class that declares no family)."""
    if family is None:
        return DEFAULT_PALETTE
    if family in FAMILY_COLORS:
        return FAMILY_COLORS[family]
    digest = hashlib.sha256(family.encode("utf-8", "surrogatepass")).digest()
    return EXTRA_PALETTES[int.from_bytes(digest[:8], "big") % len(EXTRA_PALETTES)]


def spec_palette(spec: NNModuleSpec) -> Palette:
    """The palette of the family ``spec``'s class declares (``type(spec).family``)."""
    return family_palette(type(spec).family)
