"""Regenerate docs/gallery.md and the SVG diagram of every zoo model in docs/gallery/.

python docs/make_gallery.py
"""

from __future__ import annotations

from pathlib import Path

from specchain.exporters import graphviz
from specchain.models import ZOO
from specchain.models import zoo as zoo_module

HERE = Path(__file__).parent


def main() -> None:
    out = HERE / "gallery"
    out.mkdir(exist_ok=True)
    lines = [
        "# Gallery: every zoo model",
        "",
        "Regenerate with `python docs/make_gallery.py`. Composite specs are drawn expanded.",
        "",
    ]
    for name, entry in ZOO.items():
        model = entry.build()
        graphviz.render(model, out / f"{name}.svg", expand=True)
        builder = getattr(zoo_module, name)
        doc = (builder.__doc__ or "").strip().splitlines()[0]
        lines += [
            f"## `{name}`",
            "",
            f"{doc} `{model.in_type}` -> `{model.out_type}`, {model.num_params:,} parameters.",
            "",
            f"![{name}](gallery/{name}.svg)",
            "",
            "```",
            model.summary(),
            "```",
            "",
        ]
    (HERE / "gallery.md").write_text("\n".join(lines))
    print(f"wrote {HERE / 'gallery.md'} and {len(ZOO)} diagrams")


if __name__ == "__main__":
    main()
