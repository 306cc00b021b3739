"""Checking one lead's answer before it goes into a lead file: the schema (types and lengths)
again on our side, then checks that hold in any language: one paragraph of at most two
sentences, no unfilled placeholder, no link, no greeting, and no number the row and the brief
do not contain (a number the model made up is the commonest invented fact).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from bot.writing.lead_list import Lead
from bot.writing.personal_prompt import ListPrefix, OpeningRejected, PersonalOpening
from bot.writing.personal_rules import OPENING_MAX_SENTENCES, TOOL_NAME

# [FirstName], {{first_name}}, {company}, <Name>, %FIRSTNAME%: anything a sequencer or a
# template language would read as a slot to fill.
PLACEHOLDER = re.compile(r"\[[^\]]*\]|\{[^}]*\}|<[^>]*>|%[A-Za-z_]+%")
LINK = re.compile(r"https?://|www\.|\S@\S", re.IGNORECASE)
# A sentence ends at . ! ? or an ellipsis before a space or the end, or at a CJK full stop.
SENTENCE_END = re.compile(r"[.!?\u2026]+(?=\s|$)|[\u3002\uff01\uff1f]")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def tool_input_of(content: Iterable[Any]) -> Mapping[str, Any] | None:
    """The input of the model's `write_opening` call among a message's content blocks (SDK
    objects or plain dicts), or None when it did not call the tool."""
    for block in content:
        get = block.get if isinstance(block, Mapping) else lambda k, b=block: getattr(b, k, None)
        if get("type") == "tool_use" and get("name") == TOOL_NAME:
            tool_input = get("input")
            return tool_input if isinstance(tool_input, Mapping) else None
    return None


def sentences(text: str) -> int:
    ends = len(SENTENCE_END.findall(text))
    return ends + (0 if SENTENCE_END.search(text.rstrip()[-1:] or ".") else 1)


def check_opening(
    tool_input: Mapping[str, Any] | None, lead: Lead, prefix: ListPrefix
) -> PersonalOpening | OpeningRejected:
    """The answer as a `PersonalOpening`, or every reason it can't be used."""
    if tool_input is None:
        return OpeningRejected((f"the model did not call {TOOL_NAME}",))
    try:
        answer = PersonalOpening.model_validate(dict(tool_input))
    except ValidationError as exc:
        return OpeningRejected(
            tuple(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        )
    reasons: list[str] = []
    for name, text in (("opening", answer.opening), ("subject_a", answer.subject_a)):
        if "\n" in text:
            reasons.append(f"{name} has a line break")
        if found := PLACEHOLDER.search(text):
            reasons.append(f"{name} has an unfilled placeholder {found.group()!r}")
        if LINK.search(text):
            reasons.append(f"{name} has a link or an email address")
        known = " ".join([prefix.known_text, *lead.values])
        for number in NUMBER.findall(text):
            if number not in known:
                reasons.append(f"{name} has the number {number}, which the row does not")
    if sentences(answer.opening) > OPENING_MAX_SENTENCES:
        reasons.append(f"the opening has more than {OPENING_MAX_SENTENCES} sentences")
    if lead.first_name and answer.opening.casefold().startswith(
        (lead.first_name.casefold() + ",", lead.first_name.casefold() + "!")
    ):
        reasons.append("the opening starts with a greeting")
    return OpeningRejected(tuple(reasons)) if reasons else answer
