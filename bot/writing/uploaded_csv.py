"""How an uploaded CSV file is written: the encoding of its bytes and the delimiter of its
cells, found with maintained code (charset-normalizer, csv.Sniffer) steered to the choices
spreadsheets and sequencers actually make.
"""

from __future__ import annotations

import codecs
import csv

from charset_normalizer import from_bytes

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
# Enough lines for csv.Sniffer to see the pattern, small enough to sniff at once.
SNIFF_CHARS = 64 * 1024
# What Excel writes when a file is not UTF-8: Windows-1252 in the West (a superset of the
# printable Latin-1), Shift-JIS (cp932) in Japan. Detection is limited to these because on a
# short file charset-normalizer otherwise guesses look-alikes ("Müller" read as Mac Latin-2).
LEGACY_ENCODINGS = ["cp1252", "cp932"]
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def detect_encoding(data: bytes) -> str:
    """The codec to read `data` with: its byte-order mark, else UTF-8 when it is valid UTF-8,
    else what charset-normalizer finds among the legacy encodings Excel writes."""
    for bom, codec in BOMS:
        if data.startswith(bom):
            return codec
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:  # in slices, so a 5 MB file is never held twice as text
        for start in range(0, len(data), 256 * 1024):
            decoder.decode(data[start : start + 256 * 1024])
        decoder.decode(b"", final=True)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data, cp_isolation=LEGACY_ENCODINGS).best()
    return best.encoding if best is not None else "latin-1"  # latin-1 decodes any byte


def sniff_delimiter(sample: str) -> str:
    """Comma, semicolon or tab: csv.Sniffer on the first lines, else whichever the header row
    holds most of (a one-column file holds none: comma)."""
    lines = sample[: sample.rfind("\n") + 1] or sample
    try:
        return csv.Sniffer().sniff(lines, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        header = lines.split("\n", 1)[0]
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","
