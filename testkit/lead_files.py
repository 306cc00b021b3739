"""Lead lists as users export them, for tests and benchmarks: a full-size file (5,000 rows,
just under 5 MB) in any encoding."""

from __future__ import annotations

import random

from bot.writing.lead_list import MAX_BYTES, MAX_ROWS

HEADER = "Email,First Name,Last Name,Company Name,Job Title,Website,LinkedIn Profile,City,Notes"
NAMES = ["Jürgen", "Zoë", "François", "Ana", "Søren", "Łukasz", "Priya", "José", "Marie"]


def lead_list(encoding: str) -> bytes:
    rng = random.Random(7)
    lines = [HEADER]
    budget = MAX_BYTES - 96 * 1024  # just under the limit once accents take two bytes
    width = len("ab".encode(encoding)) - len("a".encode(encoding))  # bytes per ASCII char
    per_row = budget // MAX_ROWS // width
    for n in range(MAX_ROWS):
        name = rng.choice(NAMES).replace("Ł", "L")  # cp1252 has no Ł
        row = (
            f"lead{n}@company{n % 977}.example.com,{name},Müller-{n},Café Nörd {n} GmbH,"
            f"Head of Operations,https://www.company{n % 977}.example.com,"
            f"https://www.linkedin.com/in/lead-{n},Köln,"
        )
        notes = "Opened a second warehouse and hires dispatchers; " * 40
        lines.append(row + '"' + notes[: max(0, per_row - len(row) - 4)] + '"')
    data = ("\r\n".join(lines) + "\r\n").encode(encoding)
    assert len(data) <= MAX_BYTES, len(data)
    return data
