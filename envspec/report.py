"""Reporters for differences, chosen by name: ``text`` (a rich table), ``json``, ``markdown``.

The JSON shape is stable: ``{"left", "right", "undeclared", "differences": [{"path", "left",
"right", "status", "reason"}]}`` where ``status`` is ``expected``, ``declared`` or
``undeclared``; secret values appear only as their reference or ``<literal secret>``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from envspec.parity import Difference, Matrix

if TYPE_CHECKING:
    from envspec.api import Explanation

_LABELS = {"expected": "expected", "declared": "declared", "undeclared": "UNDECLARED"}


def render_diff(left: str, right: str, differences: list[Difference], output_format: str) -> str:
    return _REPORTERS[output_format](left, right, differences)


def _status(difference: Difference) -> str:
    label = _LABELS[difference.status]
    return f"{label}: {difference.reason}" if difference.reason else label


def _json(left: str, right: str, differences: list[Difference]) -> str:
    payload = {
        "left": left,
        "right": right,
        "undeclared": sum(d.status == "undeclared" for d in differences),
        "differences": [d.as_dict() for d in differences],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def _markdown(left: str, right: str, differences: list[Difference]) -> str:
    lines = [f"| path | {_cell(left)} | {_cell(right)} | status |", "|---|---|---|---|"]
    lines += [
        f"| `{_cell(d.path)}` | {_cell(d.left)} | {_cell(d.right)} | {_cell(_status(d))} |"
        for d in differences
    ]
    if not differences:
        lines.append("| | | | no differences |")
    return "\n".join(lines) + "\n"


def _text(left: str, right: str, differences: list[Difference]) -> str:
    colours = {"expected": "dim", "declared": "cyan", "undeclared": "bold red"}
    rows = [((d.path, d.left, d.right, _status(d)), colours[d.status]) for d in differences]
    undeclared = sum(d.status == "undeclared" for d in differences)
    return _table(
        f"{left} vs {right}",
        ("path", left, right, "status"),
        rows,
        f"{len(differences)} differences, {undeclared} undeclared",
    )


Row = tuple[tuple[str, ...], str]
"""A table row's cells and its rich style."""


def _table(title: str, headers: tuple[str, ...], rows: Sequence[Row], footer: str) -> str:
    """A table and a footer line as text. On a terminal: a rich table as wide as the terminal,
    coloured unless NO_COLOR is set, long values wrapped, never cut. Read by a program: one
    line per row, whole, columns padded, line breaks in a value shown as ``\\n``."""
    if not sys.stdout.isatty():
        return _plain(title, headers, [cells for cells, _ in rows], footer)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for header in headers:
        table.add_column(header, overflow="fold")
    for cells, style in rows:
        table.add_row(*cells, style=style)
    buffer = io.StringIO()
    colour = "NO_COLOR" not in os.environ
    width = shutil.get_terminal_size().columns
    console = Console(file=buffer, force_terminal=colour, no_color=not colour, width=width)
    console.print(table)
    console.print(footer)
    return buffer.getvalue()


_LINE_BREAKS = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _plain(title: str, headers: tuple[str, ...], rows: list[tuple[str, ...]], footer: str) -> str:
    lines = [headers, *(tuple(cell.translate(_LINE_BREAKS) for cell in row) for row in rows)]
    widths = [max(len(line[column]) for line in lines) for column in range(len(headers))]
    text = [title]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=True)]
        text.append("  ".join(cells).rstrip())
    text.append(footer)
    return "\n".join(text) + "\n"


_REPORTERS = {"text": _text, "json": _json, "markdown": _markdown}


def render_matrix(matrix: Matrix, output_format: str) -> str:
    if output_format == "json":
        return json.dumps(_matrix_json(matrix), indent=2, ensure_ascii=False) + "\n"
    if output_format == "markdown":
        return _matrix_markdown(matrix)
    colours = {"same": "", "expected": "dim", "declared": "cyan", "undeclared": "bold red"}
    headers = ("component", *matrix.environments, "score", "verdict")
    rows = [
        ((row.component, *row.cells, f"{row.score}%", row.verdict), colours[row.verdict])
        for row in matrix.rows
    ]
    footer = [
        f"{row.component} ({row.score}%): {row.reason.translate(_LINE_BREAKS)}"
        for row in matrix.rows
        if row.reason
    ]
    footer.append(f"parity score: {matrix.score}% (the mean of the rows' scores)")
    return _table("parity matrix", headers, rows, "\n".join(footer))


def _matrix_json(matrix: Matrix) -> dict[str, Any]:
    rows = []
    for row in matrix.rows:
        item: dict[str, Any] = {
            "component": row.component,
            "cells": dict(zip(matrix.environments, row.cells, strict=True)),
            "verdict": row.verdict,
            "score": row.score,
        }
        if row.reason:
            item["reason"] = row.reason
        rows.append(item)
    return {"environments": list(matrix.environments), "score": matrix.score, "rows": rows}


def _matrix_markdown(matrix: Matrix) -> str:
    """A heading, the matrix and the reasons of its declared rows: ready for a pull request."""
    headers = ["component", *map(_cell, matrix.environments), "score", "verdict"]
    lines = [
        f"### Parity score: {matrix.score}%",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * (len(headers) - 2) + "--:|---|",
    ]
    for row in matrix.rows:
        cells = [f"`{row.component}`", *map(_cell, row.cells), f"{row.score}%", row.verdict]
        lines.append("| " + " | ".join(cells) + " |")
    reasons = [row for row in matrix.rows if row.reason]
    if reasons:
        lines += ["", "Reasons:", ""]
        lines += [f"- `{row.component}` ({row.score}%): {_cell(row.reason)}" for row in reasons]
    lines += ["", "The score is the mean of the rows' scores (`envspec parity`)."]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text that stays inside one cell of a markdown table."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_explanation(explanation: Explanation, output_format: str) -> str:
    if output_format == "json":
        return json.dumps(explanation.as_dict(), indent=2, ensure_ascii=False) + "\n"
    spec = explanation.variable
    lines = [
        f"{explanation.name} ({spec.type}{', secret' if spec.secret else ''})",
        f"  {spec.description}" if spec.description else "",
        "  environments:",
    ]
    for item in explanation.environments:
        lines.append(f"    {item.environment}: {item.shown}  [{item.origin}]")
        lines += [f"      {part.label}: {part.shown}  [{part.origin}]" for part in item.parts]
        for own in item.services:
            lines.append(f"      service {own.service}: {own.shown}  [{own.origin}]")
            lines += [f"        {part.label}: {part.shown}  [{part.origin}]" for part in own.parts]
    lines.append("  received by: " + (", ".join(explanation.services) or "no service"))
    lines.append("  written to:")
    lines += [f"    {path}" for path in explanation.files]
    return "\n".join(line for line in lines if line) + "\n"
