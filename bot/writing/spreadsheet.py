"""CSV files a spreadsheet can open safely: every text cell that a spreadsheet would read as a
formula is neutralised, as OWASP's "CSV Injection" page advises, and rows are written as
RFC 4180 says (the csv module's default dialect, CRLF line ends).

https://owasp.org/www-community/attacks/CSV_Injection
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

# A cell starting with one of these is run as a formula by Excel, LibreOffice or Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """`value` as it can go into a CSV cell: text a spreadsheet would run as a formula gets a
    leading apostrophe (shown as text, never evaluated); numbers and everything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """The rows as CSV text, every cell neutralised."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([safe_cell(value) for value in row])
    return out.getvalue()
