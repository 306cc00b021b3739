"""Block Kit's building blocks as ColdCopy uses them: a message (fallback text plus blocks),
escaping (after which no text can form a mention or a link), length limits, and rendering
through slack_sdk's models, so a limit violation fails in a unit test, not in a channel.

Every piece of user- or model-supplied text goes through `escape`, so a brief that says
`<!channel>` can never ping anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from slack_sdk.models.blocks import (
    Block,
    MarkdownTextObject,
    PlainTextObject,
)

from bot.slack import constants as K


@dataclass(frozen=True)
class Message:
    """A message ready for chat.postMessage / chat.update: fallback text plus blocks."""

    text: str
    blocks: list[dict]


def escape(text: str) -> str:
    """Slack's three control characters; after this no text can form a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_markdown(text: str) -> str:
    """Text made inert for standard Markdown (a stream's `markdown_text`): no mention
    (`<!channel>`, `<@U...>`) and no link syntax; the reader sees the characters themselves."""
    return escape(text).replace("[", "\\[").replace("]", "\\]")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(text: str, limit: int) -> PlainTextObject:
    return PlainTextObject(text=truncate(escape(text), limit), emoji=True)


def mrkdwn(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text)


def render(blocks: list[Block]) -> list[dict]:
    if len(blocks) > K.MAX_BLOCKS_PER_MESSAGE:
        raise ValueError(f"{len(blocks)} blocks exceed Slack's {K.MAX_BLOCKS_PER_MESSAGE}")
    return [b.to_dict() for b in blocks]  # to_dict() validates every limit the models know


def slack_date(moment: datetime, fmt: str = "{date_long}") -> str:
    """A date Slack shows in each reader's own timezone, with a UTC fallback."""
    return f"<!date^{int(moment.timestamp())}^{fmt}|{moment:%B %-d, %Y} UTC>"


def split_paragraphs(text: str, limit: int = K.MAX_SECTION_TEXT) -> list[str]:
    """Split escaped text into chunks of at most `limit` characters, at paragraph boundaries
    where possible, else at line breaks or spaces, never inside a word unless it must."""
    chunks: list[str] = []
    current = ""
    for paragraph in text.split("\n\n"):
        candidate = f"{current}\n\n{paragraph}" if current else paragraph
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            chunks.append(current)
        while len(paragraph) > limit:
            cut = max(paragraph.rfind("\n", 0, limit), paragraph.rfind(" ", 0, limit))
            if cut <= 0:
                cut = limit
                # never split an escape sequence such as &amp;
                amp = paragraph.rfind("&", cut - 5, cut)
                if amp > 0 and ";" not in paragraph[amp:cut]:
                    cut = amp
            chunks.append(paragraph[:cut].rstrip())
            paragraph = paragraph[cut:].lstrip()
        current = paragraph
    if current:
        chunks.append(current)
    return chunks or [""]


def money(amount: Decimal) -> str:
    return f"${amount:.2f}" if amount >= Decimal("0.01") or amount == 0 else f"${amount:.4f}"
