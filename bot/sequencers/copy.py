"""The words of a step as a tool takes them: the model's placeholders turned into the tool's
merge tags (the same table the export files use) and plain text turned into HTML paragraphs."""

from __future__ import annotations

import html
import re

from bot.writing.export_formats import FORMATS_BY_KEY

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n+")


def merge_tags(tool: str, text: str) -> str:
    """`text` with every placeholder the model writes replaced by `tool`'s merge tag."""
    for placeholder, tag in FORMATS_BY_KEY[tool].merge_tags.items():
        text = text.replace(placeholder, tag)
    return text


def body_html(tool: str, text: str) -> str:
    """A plain-text body as HTML: one <p> per paragraph (paragraphs are separated by blank
    lines), <br> for a single line break, the text escaped (&, <, >) so a "<" or "&"
    the model wrote shows as written, and the tool's merge tags (which hold no escaped
    characters) put in after escaping."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    paragraphs = [p.strip() for p in _PARAGRAPH_BREAK.split(text) if p.strip()]
    parts = [
        "<p>"
        + "<br>".join(html.escape(line.strip(), quote=False) for line in p.split("\n"))
        + "</p>"
        for p in paragraphs
    ]
    return merge_tags(tool, "".join(parts))


def subject(tool: str, text: str) -> str:
    """A subject line: plain text (tools do not render HTML there), with merge tags."""
    return merge_tags(tool, " ".join(text.split()))
