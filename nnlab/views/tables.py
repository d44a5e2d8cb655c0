"""Tables of ready-made cells, in each output format: the terminal (rich), Markdown and LaTeX.

The group table, the pivot and the --versus table of ``nnlab compare`` are laid out here; what
goes in a cell is their own business. A cell is never cut or wrapped.
"""

from __future__ import annotations

from typing import Collection, TextIO

from nnlab.views.compare import COLUMN_GAP, console_for
from nnlab.views.style import table_width, text_width

#: (row, column) positions of the cells to set in bold.
Marks = Collection[tuple[int, int]]


def text_table(headers: list[str], rows: list[list[str]], right: list[bool], out: TextIO,
               title: str | None = None, bold: Marks = ()) -> None:
    """A table in compare's layout (box.SIMPLE_HEAD), as wide as it needs (the caller splits a
    table too wide for the terminal: :func:`fitted_tables`)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console_for(out)
    widths = [text_width([h, *(row[i] for row in rows)]) for i, h in enumerate(headers)]
    needed = table_width(widths, COLUMN_GAP, -COLUMN_GAP)
    if title:
        console.print(Text(title), markup=False)
    if needed > console.width:
        console = Console(file=out, highlight=False, soft_wrap=False, width=needed)
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    for header, is_right in zip(headers, right):
        table.add_column(Text(header), justify="right" if is_right else "left", no_wrap=True)
    for r, row in enumerate(rows):
        table.add_row(*(Text(c, style="bold" if (r, i) in bold else "") for i, c in enumerate(row)))
    console.print(table)


def fitted_tables(headers: list[str], rows: list[list[str]], right: list[bool], parts: list[list[int]],
                  lead: int, out: TextIO, title: str, bold: Marks = ()) -> None:
    """A table split into several when the terminal is too narrow, each repeating the first
    ``lead`` columns and keeping each part (e.g. a metric's columns) together where it fits."""
    from nnlab.views.style import pack_columns

    width = console_for(out).width
    widths = [text_width([h, *(row[i] for row in rows)]) for i, h in enumerate(headers)]
    fixed = list(range(lead))
    tables = pack_columns(parts, widths, width, gap=COLUMN_GAP, edges=-COLUMN_GAP, fixed=fixed) if parts else [[]]
    for n, columns in enumerate(tables):
        chosen = fixed + columns
        if n:
            out.write("\n")
        marks = {(r, chosen.index(c)) for r, c in bold if c in chosen}
        text_table([headers[i] for i in chosen], [[row[i] for i in chosen] for row in rows],
                   [right[i] for i in chosen], out, title if n == 0 else None, marks)


def markdown_table(headers: list[str], rows: list[list[str]], right: list[bool], out: TextIO,
                   bold: Marks = ()) -> None:
    """A GitHub-flavoured Markdown table (right-aligned columns marked ``---:``)."""
    def escaped(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(escaped(h) for h in headers) + " |",
             "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    lines += ["| " + " | ".join(f"**{escaped(c)}**" if (r, i) in bold and c else escaped(c)
                                for i, c in enumerate(row)) + " |" for r, row in enumerate(rows)]
    out.write("\n".join(lines) + "\n")


#: Characters LaTeX reads as commands, and what prints them in text.
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "±": r"\ensuremath{\pm}", "<": r"\textless{}", ">": r"\textgreater{}"}


def latex_escape(text: str) -> str:
    """``text`` as LaTeX prints it: every special character escaped, ± as math."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def latex_table(headers: list[str], rows: list[list[str]], right: list[bool], out: TextIO,
                bold: Marks = (), comment: str | None = None) -> None:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``): numbers right-aligned, so the
    same decimals line up; cells escaped; ``comment`` above it as a LaTeX comment."""
    def row_text(cells: list[str], marked: set[int]) -> str:
        return " & ".join(rf"\textbf{{{latex_escape(c)}}}" if i in marked and c else latex_escape(c)
                          for i, c in enumerate(cells)) + r" \\"

    lines = [f"% {line}" for line in (comment or "").splitlines()]
    lines += [r"\begin{tabular}{" + "".join("r" if r else "l" for r in right) + "}", r"\toprule",
              row_text(headers, set()), r"\midrule"]
    lines += [row_text(row, {i for r, i in bold if r == n}) for n, row in enumerate(rows)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    out.write("\n".join(lines) + "\n")
