"""A self-contained HTML report: sections of paragraphs, tables and embedded figures.

The page carries its own style sheet and its figures as base64 PNG, loads nothing from the
network and runs no script, so it opens offline in any browser and can be mailed as one file.
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import ParameterError
from ..runstore import atomic_path
from .style import figure_bytes

__all__ = ["Report"]

_CSS = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { border-bottom: 2px solid #0072B2; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
nav ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .4em 1.2em; }
nav a { color: #0072B2; text-decoration: none; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f2f5f8; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .caption { color: #555; font-size: 0.9em; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: 0.85em; }
.note { color: #8a5300; }
.warning { color: #b00000; font-weight: bold; }
details { margin: .4em 0; }
summary { cursor: pointer; color: #0072B2; }
figcaption { margin-top: .4em; max-width: 60em; }
"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _format_cell(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "" if np.isnan(value) else str(value)
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.4g}"
    if value is None or value is pd.NA:
        return ""
    return str(value)


class Report:
    """An HTML page built section by section (like mne's ``Report``).

    Parameters
    ----------
    title : str
        Page title and top heading.

    Examples
    --------
    >>> report = Report("my run")
    >>> report.add_section("Results")
    >>> report.add_table(pd.DataFrame({"layer": ["conv1"], "r2": [0.5]}), title="Scores")
    >>> "conv1" in report.to_html()
    True
    """

    def __init__(self, title: str):
        self.title = title
        self.sections: list[tuple[str, str, list[str]]] = []

    def add_section(self, title: str, *, section_id: str | None = None) -> str:
        """Start a section; later items go into it. Returns its anchor id."""
        section_id = section_id or _slug(title)
        if any(existing == section_id for existing, _, _ in self.sections):
            raise ParameterError(f"section_id must be unique in the report, got {section_id!r} twice")
        self.sections.append((section_id, title, []))
        return section_id

    def _items(self) -> list[str]:
        if not self.sections:
            self.add_section("Contents")
        return self.sections[-1][2]

    def add_paragraph(self, text: str, *, css_class: str | None = None) -> None:
        """Add a paragraph of plain text (escaped)."""
        attribute = f' class="{css_class}"' if css_class else ""
        self._items().append(f"<p{attribute}>{html.escape(text)}</p>")

    def add_preformatted(self, text: str) -> None:
        """Add text shown as is, in a monospace block."""
        self._items().append(f"<pre>{html.escape(text)}</pre>")

    def add_figure(self, figure: Figure | bytes, *, title: str, caption: str = "") -> None:
        """Embed a figure as a base64 PNG.

        Parameters
        ----------
        figure : Figure or bytes
            A matplotlib figure (saved with the audioprobe style) or PNG bytes.
        title : str, keyword-only
            Heading above the figure, also its alternative text.
        caption : str, keyword-only
            Text under the figure.
        """
        data = figure if isinstance(figure, bytes) else figure_bytes(figure, "png")
        if not data.startswith(b"\x89PNG"):
            raise ParameterError("figure must be a matplotlib Figure or PNG bytes, got bytes that are not a PNG")
        source = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._items().append(f'<figure id="fig-{_slug(title)}"><h3>{html.escape(title)}</h3>'
                             f'<img src="{source}" alt="{html.escape(title)}">{cap}</figure>')

    def add_table(self, table: pd.DataFrame, *, title: str = "", caption: str = "", max_rows: int = 200,
                  collapsed: bool = False) -> None:
        """Add a table (values escaped, floats to 3 significant digits).

        Parameters
        ----------
        table : pd.DataFrame
        title : str, keyword-only
            Heading above the table.
        caption : str, keyword-only
            Text under the table.
        max_rows : int, keyword-only
            Rows shown; a note says how many more the table has.
        collapsed : bool, keyword-only
            Show only the title, and the table when the reader opens it (an HTML ``<details>``
            element: no script; printed closed).
        """
        if max_rows < 1:
            raise ParameterError(f"max_rows must be at least 1, got {max_rows!r}")
        items = self._items()
        if collapsed:
            items.append(f"<details><summary>{html.escape(title or 'table')} ({len(table)} rows)</summary>")
        elif title:
            items.append(f"<h3>{html.escape(title)}</h3>")
        shown = table.head(max_rows)
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_format_cell(v))}</td>" for v in row) + "</tr>"
                       for row in shown.itertuples(index=False, name=None))
        items.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        if len(table) > max_rows:
            items.append(f'<p class="caption">showing {max_rows} of {len(table)} rows</p>')
        if caption:
            items.append(f'<p class="caption">{html.escape(caption)}</p>')
        if collapsed:
            items.append("</details>")

    def to_html(self) -> str:
        """Return the whole page."""
        nav = "".join(f'<li><a href="#{sid}">{html.escape(title)}</a></li>' for sid, title, _ in self.sections)
        body = "\n".join(f'<section id="{sid}"><h2>{html.escape(title)}</h2>\n' + "\n".join(items) + "</section>"
                         for sid, title, items in self.sections)
        return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                f"<title>{html.escape(self.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
                f"<h1>{html.escape(self.title)}</h1>\n<nav><ul>{nav}</ul></nav>\n{body}\n</body>\n</html>\n")

    def save(self, path: str | Path) -> Path:
        """Atomically write the page to ``path``; returns it."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(self.to_html(), encoding="utf-8")
        return path

