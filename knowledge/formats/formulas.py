"""Text cells a spreadsheet would run as formulas, and the ``'`` in front that keeps them text.

OWASP's "CSV Injection": a cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a
formula to Excel and LibreOffice, also behind the spaces they trim; a citizen's ``=HYPERLINK(...)`` in a
staff export would otherwise run on a civil servant's machine.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def runs_as_formula(cell: str) -> bool:
    """Whether a spreadsheet would read the cell as a formula."""
    return cell.startswith(FORMULA_STARTS) or cell.lstrip().startswith(FORMULA_STARTS)


def neutralise(cell: str) -> str:
    """The cell behind a ``'`` when it would run as a formula once any ``'`` it begins with were gone.

    Counting the quotes already there makes :func:`restore` give back exactly this cell: ``'=x`` is written
    ``''=x``, while ``'Tis`` needs nothing."""
    return "'" + cell if runs_as_formula(cell.lstrip("'")) else cell


def restore(cell: str) -> str:
    """The text :func:`neutralise` was given: the cell without the ``'`` it adds."""
    return cell[1:] if cell.startswith("'") and runs_as_formula(cell.lstrip("'")) else cell
