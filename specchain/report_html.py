"""The demo's ``index.html``: one self-contained page (diagrams and the loss curve inline as SVG,
no script, no external file needed to view it) with the training result, the export verdicts
and every zoo model's summary and diagram."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from specchain.demo_results import ModelResult, TrainingResult

STYLE = """
body { font-family: sans-serif; max-width: 70em; margin: 2em auto; padding: 0 1em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; }
td.pass { color: #1a7f37; font-weight: bold; }
td.fail { color: #cf222e; font-weight: bold; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; }
figure { margin: 1em 0; overflow-x: auto; }
"""


def write_html(
    out: Path, models: Sequence[ModelResult], training: TrainingResult, loss_svg: str
) -> Path:
    """Write ``out/index.html`` and return its path."""
    body = [
        "<h1>specchain demo</h1>",
        "<h2>Training</h2>",
        f"<p>{html.escape(training.line())}.</p>",
        f"<figure>{loss_svg}</figure>",
        "<h2>PyTorch exports</h2>",
        _verdict_table(models),
        *(_model_section(result) for result in models),
    ]
    page = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8"><title>specchain demo</title>',
        f"<style>{STYLE}</style></head>",
        "<body>",
        *body,
        "</body></html>",
    ]
    target = out / "index.html"
    target.write_text("\n".join(page) + "\n", encoding="utf-8")
    return target


def _verdict_table(models: Sequence[ModelResult]) -> str:
    rows = [
        "<table>",
        "<tr><th>model</th><th>input -&gt; output</th><th>parameters</th>"
        "<th>export</th><th>pytorch.verify</th><th>max |diff|</th></tr>",
    ]
    for result in models:
        name = html.escape(result.name)
        types = html.escape(f"{result.model.in_type} -> {result.model.out_type}")
        if result.verdict is None:
            verdict = '<td colspan="2">not verified: install torch</td>'
        else:
            css = "pass" if result.verdict.ok else "fail"
            verdict = (
                f'<td class="{css}">{result.verdict.label}</td>'
                f"<td>{result.verdict.max_abs:.1e}</td>"
            )
        rows.append(
            f'<tr><td><a href="#{name}">{name}</a></td><td>{types}</td>'
            f"<td>{result.model.num_params:,}</td>"
            f'<td><a href="exports/{name}/model.py">model.py</a></td>{verdict}</tr>'
        )
    rows.append("</table>")
    return "\n".join(rows)


def _model_section(result: ModelResult) -> str:
    name = html.escape(result.name)
    if result.diagram is None:
        diagram = f"<p>No diagram: {html.escape(result.diagram_note)}</p>"
    else:
        diagram = f"<figure>{inline_svg(result.diagram.read_text(encoding='utf-8'))}</figure>"
    return "\n".join(
        [
            f'<h2 id="{name}">{name}</h2>',
            f"<pre>{html.escape(result.summary)}</pre>",
            diagram,
        ]
    )


def inline_svg(document: str) -> str:
    """An SVG file's ``<svg>`` element, without the XML declaration, DOCTYPE and comments that
    precede it (they are not allowed inside HTML).

    Raises:
        ValueError: the text holds no ``<svg`` element.
    """
    start = document.find("<svg")
    if start < 0:
        raise ValueError(
            f"expected an SVG document, got text starting {document[:40]!r}; render with a "
            "'.svg' target"
        )
    return document[start:]
