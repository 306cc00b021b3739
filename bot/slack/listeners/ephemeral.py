"""Answers only the user who typed or clicked sees, sent through the interaction's
response_url and never replacing the message they clicked on."""

from __future__ import annotations

from slack_bolt import Respond

from bot.slack.blocks import Message


def reply(respond: Respond, message: Message | str) -> None:
    if isinstance(message, str):
        respond(text=message, response_type="ephemeral", replace_original=False)
    else:
        respond(
            text=message.text,
            blocks=message.blocks,
            response_type="ephemeral",
            replace_original=False,
        )
