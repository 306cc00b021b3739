"""The thread's messages, built as pure functions from domain objects: the parent message and
its progress line, each email's reply with its controls, the heading of an email being
streamed, and the failure notice."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextActionsBlock,
    ContextBlock,
    FeedbackButtonObject,
    FeedbackButtonsElement,
    HeaderBlock,
    Option,
    OverflowMenuElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)

from bot.domain.rewrites import QUICK_CHANGES
from bot.slack import constants as K
from bot.slack.block_kit import (
    Message,
    escape,
    escape_markdown,
    mrkdwn,
    plain,
    render,
    split_paragraphs,
    truncate,
)
from bot.slack.sending_blocks import send_menu
from bot.writing.brief import Brief
from bot.writing.export_formats import EXPORT_FORMATS
from bot.writing.prompt import SEQUENCE_LENGTH


@dataclass(frozen=True)
class Progress:
    """Where a generation stands, for the parent message's status line."""

    posted: int = 0
    finished: bool = False
    failed: bool = False
    used: int | None = None
    limit: int | None = None
    note: str | None = None
    # Waiting for a worker: how many accepted requests are ahead of this one.
    queued_ahead: int | None = None
    # Taken over after the process writing it stopped; the emails already posted stay.
    recovered: bool = False

    def line(self) -> str:
        if self.finished:
            line = f":white_check_mark: {self.posted} emails"
            if self.used is not None and self.limit is not None:
                line += f" · {self.used} of {self.limit} used this month"
            return line
        if self.failed:
            if self.posted:
                return (
                    f":warning: Incomplete: {self.posted} of {SEQUENCE_LENGTH} emails were "
                    "written before something went wrong. Nothing was counted against your quota."
                )
            return ":warning: The sequence could not be written. Nothing was counted."
        if self.queued_ahead is not None:
            if self.queued_ahead == 0:
                return ":hourglass_flowing_sand: Queued: you're next."
            return f":hourglass_flowing_sand: Queued: {self.queued_ahead} ahead of you."
        line = f":hourglass_flowing_sand: Writing email {self.posted + 1} of {SEQUENCE_LENGTH}…"
        if self.recovered:
            line += " Picked up again after an interruption; the emails above are kept."
        return line


def parent_message(
    brief: Brief, user_id: str, progress: Progress, generation_id: str | None = None
) -> Message:
    title = f"Cold email sequence: {brief.company} · {brief.job_title}"
    blocks: list[Block] = [
        HeaderBlock(text=plain(title, K.MAX_HEADER_TEXT)),
        SectionBlock(
            text=mrkdwn(
                f"For *{escape(brief.job_title)}* at *{escape(brief.company)}* · "
                f"Tone: {escape(brief.tone)} · Language: {brief.language_name} · "
                f"Requested by <@{user_id}>"
            )
        ),
        ContextBlock(elements=[mrkdwn(progress.line())]),
    ]
    if progress.note:
        blocks.append(ContextBlock(elements=[mrkdwn(progress.note)]))
    if progress.finished and generation_id:
        blocks.append(ActionsBlock(elements=[export_menu(generation_id), send_menu(generation_id)]))
        blocks.append(sequence_controls(generation_id))
    text = truncate(
        f"Cold email sequence for {escape(brief.company)} ({escape(brief.job_title)})",
        K.MAX_NOTIFICATION_TEXT,
    )
    return Message(text=text, blocks=render(blocks))


def export_menu(generation_id: str) -> StaticSelectElement:
    """The "Export as…" menu: one option per export format, each carrying the generation."""
    return StaticSelectElement(
        action_id=K.EXPORT_ACTION,
        placeholder=PlainTextObject(text="Export as…", emoji=True),
        options=[
            Option(text=fmt.label, value=export_option_value(generation_id, fmt.key))
            for fmt in EXPORT_FORMATS
        ],
    )


def export_option_value(generation_id: str, format_key: str) -> str:
    return f"{generation_id}:{format_key}"


def parse_export_option(value: str) -> tuple[str, str]:
    """(generation id, format key) from an export option's value."""
    generation_id, _, format_key = value.partition(":")
    return generation_id, format_key


def email_message(
    step: int, email, generation_id: str | None = None, *, edited_by: str | None = None
) -> Message:
    """One email of the sequence as a threaded reply: day, both subjects, body, notes, and
    (when it belongs to a stored sequence) the rewrite controls and feedback buttons."""
    blocks: list[Block] = [
        HeaderBlock(text=plain(f"Email {step} · Day {email.day}", K.MAX_HEADER_TEXT)),
        SectionBlock(
            text=mrkdwn(
                f"*Subject A:* {escape(email.subject_a)}\n*Subject B:* {escape(email.subject_b)}"
            )
        ),
    ]
    trailing: list[Block] = []
    summary = email.quality.summary()
    if summary:
        trailing.append(ContextBlock(elements=[mrkdwn(escape(summary))]))
    if edited_by:
        trailing.append(ContextBlock(elements=[mrkdwn(f":pencil2: Edited by <@{edited_by}>")]))
    if generation_id:
        trailing.extend(email_controls(generation_id, step))
    chunks = split_paragraphs(escape(email.body))
    room = K.MAX_BLOCKS_PER_MESSAGE - len(blocks) - len(trailing)
    if len(chunks) > room:
        chunks = [*chunks[: room - 1], "_…the rest of this email is in the export._"]
    blocks.extend(SectionBlock(text=mrkdwn(chunk)) for chunk in chunks)
    blocks.extend(trailing)
    text = truncate(
        f"Email {step} (day {email.day}): {escape(email.subject_a)}", K.MAX_NOTIFICATION_TEXT
    )
    return Message(text=text, blocks=render(blocks))


def control_value(*parts: object) -> str:
    """What a control carries back in its click: the sequence and the email, `|`-separated."""
    value = "|".join(str(part) for part in parts)
    if len(value) > K.MAX_OPTION_VALUE:
        raise ValueError(f"control value longer than {K.MAX_OPTION_VALUE}: {value!r}")
    return value


def email_controls(generation_id: str, step: int) -> list[Block]:
    """Rewrite this email (quick choices, or the user's own words in a modal) and rate it."""
    options = [
        Option(text=quick.label, value=control_value(quick.key, generation_id, step))
        for quick in QUICK_CHANGES[: K.MAX_OVERFLOW_OPTIONS]
    ]
    return [
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Rewrite in your words…",
                    action_id=K.REWRITE_OWN_ACTION,
                    value=control_value(generation_id, step),
                ),
                OverflowMenuElement(action_id=K.REWRITE_ACTION, options=options),
            ]
        ),
        ContextActionsBlock(
            elements=[
                FeedbackButtonsElement(
                    action_id=K.FEEDBACK_ACTION,
                    positive_button=FeedbackButtonObject(
                        text="Good email",
                        accessibility_label="This email is good",
                        value=control_value("positive", generation_id, step),
                    ),
                    negative_button=FeedbackButtonObject(
                        text="Needs work",
                        accessibility_label="This email needs work",
                        value=control_value("negative", generation_id, step),
                    ),
                )
            ]
        ),
    ]


def stream_heading(step: int, day: int | None, subject_a: str | None, subject_b: str | None) -> str:
    """The first lines of an email's reply while its body streams in (Slack's markdown)."""
    lines = [f"**Email {step}" + (f" · Day {day}**" if day is not None else "**")]
    if subject_a:
        lines.append(f"**Subject A:** {escape_markdown(subject_a)}")
    if subject_b:
        lines.append(f"**Subject B:** {escape_markdown(subject_b)}")
    return "\n".join(lines) + "\n\n"


def rewrite_heading(step: int) -> str:
    return f"_:pencil2: Rewriting email {step}…_\n\n"


def sequence_controls(generation_id: str) -> ActionsBlock:
    """A new sequence from the same brief (uses a unit), or the form pre-filled with it."""
    return ActionsBlock(
        elements=[
            ButtonElement(text="Regenerate", action_id=K.REGENERATE_ACTION, value=generation_id),
            ButtonElement(text="Edit brief", action_id=K.EDIT_BRIEF_ACTION, value=generation_id),
            ButtonElement(
                text="Personalise for a lead list",
                action_id=K.LEAD_LIST_ACTION,
                value=generation_id,
            ),
        ]
    )


def failure_message(user_message: str, generation_id: str) -> Message:
    blocks: list[Block] = [
        SectionBlock(text=mrkdwn(f":warning: {escape(user_message)}")),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Try again",
                    action_id=K.RETRY_ACTION,
                    value=generation_id,
                    style="primary",
                )
            ]
        ),
    ]
    return Message(text=truncate(user_message, K.MAX_NOTIFICATION_TEXT), blocks=render(blocks))


def join_note(channel_id: str, reason: str) -> str:
    return (
        f"I couldn't join <#{channel_id}> ({escape(reason)}), so the emails arrive whole and "
        "@-mentions of ColdCopy in this thread won't reach me."
    )


def delivery_note(channel_id: str, reason: str) -> str:
    return (
        f"I couldn't post in <#{channel_id}> ({escape(reason)}), "
        "so your sequence is here in our DM instead."
    )
