"""Pure builders from domain objects to Block Kit messages, made with slack_sdk's models so a
limit violation fails in a unit test, not in a user's channel.

Every piece of user- or model-supplied text goes through `escape`, so a brief that says
`<!channel>` can never ping anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextActionsBlock,
    ContextBlock,
    DividerBlock,
    FeedbackButtonObject,
    FeedbackButtonsElement,
    HeaderBlock,
    MarkdownTextObject,
    Option,
    OverflowMenuElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)

from bot.domain.rewrites import QUICK_CHANGES
from bot.slack import constants as K
from bot.slack.wording import ASK_AN_ADMIN
from bot.writing.brief import Brief
from bot.writing.export import EXPORT_FORMATS
from bot.writing.prompt import SEQUENCE_LENGTH
from storage.ledger import QuotaExhausted
from storage.usage import UserUsage, WorkspaceUsage


@dataclass(frozen=True)
class Message:
    """A message ready for chat.postMessage / chat.update: fallback text plus blocks."""

    text: str
    blocks: list[dict]


def escape(text: str) -> str:
    """Slack's three control characters; after this no text can form a mention or a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(text: str, limit: int) -> PlainTextObject:
    return PlainTextObject(text=_truncate(escape(text), limit), emoji=True)


def _mrkdwn(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text)


def _render(blocks: list[Block]) -> list[dict]:
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


# --- the thread -----------------------------------------------------------------------------


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
        HeaderBlock(text=_plain(title, K.MAX_HEADER_TEXT)),
        SectionBlock(
            text=_mrkdwn(
                f"For *{escape(brief.job_title)}* at *{escape(brief.company)}* · "
                f"Tone: {escape(brief.tone)} · Language: {brief.language_name} · "
                f"Requested by <@{user_id}>"
            )
        ),
        ContextBlock(elements=[_mrkdwn(progress.line())]),
    ]
    if progress.note:
        blocks.append(ContextBlock(elements=[_mrkdwn(progress.note)]))
    if progress.finished and generation_id:
        blocks.append(ActionsBlock(elements=[export_menu(generation_id)]))
        blocks.append(sequence_controls(generation_id))
    text = _truncate(
        f"Cold email sequence for {escape(brief.company)} ({escape(brief.job_title)})",
        K.MAX_NOTIFICATION_TEXT,
    )
    return Message(text=text, blocks=_render(blocks))


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
        HeaderBlock(text=_plain(f"Email {step} · Day {email.day}", K.MAX_HEADER_TEXT)),
        SectionBlock(
            text=_mrkdwn(
                f"*Subject A:* {escape(email.subject_a)}\n*Subject B:* {escape(email.subject_b)}"
            )
        ),
    ]
    trailing: list[Block] = []
    summary = email.quality.summary()
    if summary:
        trailing.append(ContextBlock(elements=[_mrkdwn(escape(summary))]))
    if edited_by:
        trailing.append(ContextBlock(elements=[_mrkdwn(f":pencil2: Edited by <@{edited_by}>")]))
    if generation_id:
        trailing.extend(email_controls(generation_id, step))
    chunks = split_paragraphs(escape(email.body))
    room = K.MAX_BLOCKS_PER_MESSAGE - len(blocks) - len(trailing)
    if len(chunks) > room:
        chunks = [*chunks[: room - 1], "_…the rest of this email is in the export._"]
    blocks.extend(SectionBlock(text=_mrkdwn(chunk)) for chunk in chunks)
    blocks.extend(trailing)
    text = _truncate(
        f"Email {step} (day {email.day}): {escape(email.subject_a)}", K.MAX_NOTIFICATION_TEXT
    )
    return Message(text=text, blocks=_render(blocks))


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
        lines.append(f"**Subject A:** {escape(subject_a)}")
    if subject_b:
        lines.append(f"**Subject B:** {escape(subject_b)}")
    return "\n".join(lines) + "\n\n"


def rewrite_heading(step: int) -> str:
    return f"_:pencil2: Rewriting email {step}…_\n\n"


def sequence_controls(generation_id: str) -> ActionsBlock:
    """A new sequence from the same brief (uses a unit), or the form pre-filled with it."""
    return ActionsBlock(
        elements=[
            ButtonElement(text="Regenerate", action_id=K.REGENERATE_ACTION, value=generation_id),
            ButtonElement(text="Edit brief", action_id=K.EDIT_BRIEF_ACTION, value=generation_id),
        ]
    )


def failure_message(user_message: str, generation_id: str) -> Message:
    blocks: list[Block] = [
        SectionBlock(text=_mrkdwn(f":warning: {escape(user_message)}")),
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
    return Message(text=_truncate(user_message, K.MAX_NOTIFICATION_TEXT), blocks=_render(blocks))


def delivery_note(channel_id: str, reason: str) -> str:
    return (
        f"I couldn't post in <#{channel_id}> ({escape(reason)}), "
        "so your sequence is here in our DM instead."
    )


# --- quota, rate and billing prompts ----------------------------------------------------------


def upgrade_blocks(exhausted: QuotaExhausted, billing_enabled: bool) -> list[Block]:
    plan = "Pro" if exhausted.plan == "pro" else "Free"
    blocks: list[Block] = [
        SectionBlock(
            text=_mrkdwn(
                f":no_entry: Your workspace has used all *{exhausted.limit}* sequences of the "
                f"{plan} plan this period. Your quota resets on "
                f"*{slack_date(exhausted.resets_at)}*."
            )
        )
    ]
    if exhausted.plan != "pro" and billing_enabled:
        blocks.append(
            SectionBlock(text=_mrkdwn("Upgrade to *ColdCopy Pro* to keep writing today."))
        )
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text="Upgrade to Pro",
                        action_id=K.UPGRADE_ACTION,
                        value="upgrade",
                        style="primary",
                    )
                ]
            )
        )
    elif exhausted.plan != "pro":
        blocks.append(ContextBlock(elements=[_mrkdwn(ASK_AN_ADMIN)]))
    return blocks


def upgrade_message(exhausted: QuotaExhausted, billing_enabled: bool) -> Message:
    return Message(
        text="Your workspace has used all its ColdCopy sequences for this period.",
        blocks=_render(upgrade_blocks(exhausted, billing_enabled)),
    )


def rate_limited_text(minutes: int) -> str:
    unit = "minute" if minutes == 1 else "minutes"
    return f"You're going fast! You can run /coldcopy again in {minutes} {unit}."


def checkout_link_message(url: str, *, portal: bool = False) -> Message:
    """A link button to Stripe: Checkout to upgrade, or the portal to manage a subscription."""
    if portal:
        intro, label = "Manage your ColdCopy Pro subscription on Stripe.", "Open billing portal"
    else:
        intro, label = "Your secure Stripe Checkout page is ready.", "Continue to Checkout"
    blocks: list[Block] = [
        SectionBlock(text=_mrkdwn(intro)),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text=label, action_id=K.CHECKOUT_LINK_ACTION, url=url, style="primary"
                )
            ]
        ),
    ]
    return Message(text=f"{intro} {url}", blocks=_render(blocks))


def plain_message(text: str) -> Message:
    return Message(
        text=_truncate(text, K.MAX_NOTIFICATION_TEXT),
        blocks=_render([SectionBlock(text=_mrkdwn(text))]),
    )


# --- /coldcopy status and help ------------------------------------------------------------------


def _money(amount: Decimal) -> str:
    return f"${amount:.2f}" if amount >= Decimal("0.01") or amount == 0 else f"${amount:.4f}"


def admin_status_message(usage: WorkspaceUsage, billing_enabled: bool, paying: bool) -> Message:
    plan = "Pro" if usage.plan == "pro" else "Free"
    if usage.subscription_status and usage.subscription_status not in ("active", "trialing"):
        plan += f" ({escape(usage.subscription_status.replace('_', ' '))})"
    tokens = usage.tokens.input + usage.tokens.output
    fields = [
        _mrkdwn(f"*Plan*\n{plan}"),
        _mrkdwn(f"*Used this period*\n{usage.used} of {usage.limit}"),
        _mrkdwn(f"*Resets*\n{slack_date(usage.resets_at)}"),
        _mrkdwn(f"*In flight*\n{usage.in_flight}"),
        _mrkdwn(
            f"*Tokens*\n{tokens:,} ({usage.tokens.input:,} in · {usage.tokens.output:,} out · "
            f"{usage.tokens.cache_read:,} cached)"
        ),
        _mrkdwn(f"*Model cost*\n{_money(usage.tokens.cost_usd)}"),
        _mrkdwn(
            f"*Feedback on emails*\n:thumbsup: {usage.feedback.positive} · "
            f":thumbsdown: {usage.feedback.negative}"
        ),
    ]
    blocks: list[Block] = [
        HeaderBlock(text=_plain("ColdCopy usage", K.MAX_HEADER_TEXT)),
        SectionBlock(fields=fields),
    ]
    if usage.per_user:
        lines = "\n".join(f"{i}. <@{user}>: {n}" for i, (user, n) in enumerate(usage.per_user, 1))
        blocks.append(DividerBlock())
        blocks.append(SectionBlock(text=_mrkdwn(f"*Top users this period*\n{lines}")))
    if billing_enabled:
        button = (
            ButtonElement(text="Manage billing", action_id=K.MANAGE_BILLING_ACTION, value="portal")
            if paying
            else ButtonElement(
                text="Upgrade to Pro",
                action_id=K.UPGRADE_ACTION,
                value="upgrade",
                style="primary",
            )
        )
        blocks.append(ActionsBlock(elements=[button]))
    text = f"ColdCopy: {usage.used} of {usage.limit} sequences used this period ({plan})."
    return Message(text=text, blocks=_render(blocks))


def member_status_message(usage: UserUsage) -> Message:
    ws = usage.workspace
    noun = "sequence" if usage.used == 1 else "sequences"
    text = (
        f"You've written *{usage.used}* {noun} this period. Your workspace has "
        f"*{ws.remaining} of {ws.limit}* left; the quota resets on {slack_date(ws.resets_at)}."
    )
    return Message(
        text=f"You've written {usage.used} {noun} this period; {ws.remaining} left.",
        blocks=_render([SectionBlock(text=_mrkdwn(text))]),
    )


HELP_TEXT = (
    "*ColdCopy* writes a 7-email cold outreach sequence for you.\n"
    "• `/coldcopy` opens the brief form; the sequence appears in the channel you pick.\n"
    "• `/coldcopy status` shows this period's usage (admins see the whole workspace).\n"
    "• `/coldcopy settings` sets the workspace's defaults for every brief (admins).\n"
    "• `/coldcopy upgrade` upgrades the workspace to Pro.\n"
    "• `/coldcopy help` shows this message."
)


def help_message(unknown: str | None = None) -> Message:
    text = HELP_TEXT
    if unknown:
        text = f"I don't know `{escape(unknown)}`.\n\n{HELP_TEXT}"
    return Message(text="How to use /coldcopy", blocks=_render([SectionBlock(text=_mrkdwn(text))]))
