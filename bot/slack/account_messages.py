"""Messages about the workspace's account: the upgrade prompt, the rate-limit answer, Stripe
links, `/coldcopy status` for admins and members, and help."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    SectionBlock,
)

from bot.slack import constants as K
from bot.slack.block_kit import Message, escape, money, mrkdwn, plain, render, slack_date, truncate
from bot.slack.wording import ASK_AN_ADMIN
from storage.quota import QuotaExhausted
from storage.usage import UserUsage, WorkspaceUsage


def upgrade_blocks(exhausted: QuotaExhausted, billing_enabled: bool) -> list[Block]:
    plan = "Pro" if exhausted.plan == "pro" else "Free"
    blocks: list[Block] = [
        SectionBlock(
            text=mrkdwn(
                f":no_entry: Your workspace has used all *{exhausted.limit}* sequences of the "
                f"{plan} plan this period. Your quota resets on "
                f"*{slack_date(exhausted.resets_at)}*."
            )
        )
    ]
    if exhausted.plan != "pro" and billing_enabled:
        blocks.append(SectionBlock(text=mrkdwn("Upgrade to *ColdCopy Pro* to keep writing today.")))
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
        blocks.append(ContextBlock(elements=[mrkdwn(ASK_AN_ADMIN)]))
    return blocks


def upgrade_message(exhausted: QuotaExhausted, billing_enabled: bool) -> Message:
    return Message(
        text="Your workspace has used all its ColdCopy sequences for this period.",
        blocks=render(upgrade_blocks(exhausted, billing_enabled)),
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
        SectionBlock(text=mrkdwn(intro)),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text=label, action_id=K.CHECKOUT_LINK_ACTION, url=url, style="primary"
                )
            ]
        ),
    ]
    return Message(text=f"{intro} {url}", blocks=render(blocks))


def plain_message(text: str) -> Message:
    return Message(
        text=truncate(text, K.MAX_NOTIFICATION_TEXT),
        blocks=render([SectionBlock(text=mrkdwn(text))]),
    )


# --- /coldcopy status and help ------------------------------------------------------------------


def admin_status_message(usage: WorkspaceUsage, billing_enabled: bool, paying: bool) -> Message:
    plan = "Pro" if usage.plan == "pro" else "Free"
    if usage.subscription_status and usage.subscription_status not in ("active", "trialing"):
        plan += f" ({escape(usage.subscription_status.replace('_', ' '))})"
    tokens = usage.tokens.input + usage.tokens.output
    fields = [
        mrkdwn(f"*Plan*\n{plan}"),
        mrkdwn(f"*Used this period*\n{usage.used} of {usage.limit}"),
        mrkdwn(f"*Resets*\n{slack_date(usage.resets_at)}"),
        mrkdwn(f"*In flight*\n{usage.in_flight}"),
        mrkdwn(
            f"*Tokens*\n{tokens:,} ({usage.tokens.input:,} in · {usage.tokens.output:,} out · "
            f"{usage.tokens.cache_read:,} cached)"
        ),
        mrkdwn(f"*Model cost*\n{money(usage.tokens.cost_usd)}"),
        mrkdwn(
            f"*Leads this month*\n{usage.leads_used:,} of {usage.leads_limit:,} · "
            f"{usage.lead_tokens.total:,} tokens · {money(usage.lead_tokens.cost_usd)}"
        ),
        mrkdwn(
            f"*Feedback on emails*\n:thumbsup: {usage.feedback.positive} · "
            f":thumbsdown: {usage.feedback.negative}"
        ),
    ]
    blocks: list[Block] = [
        HeaderBlock(text=plain("ColdCopy usage", K.MAX_HEADER_TEXT)),
        SectionBlock(fields=fields),
    ]
    if usage.per_user:
        lines = "\n".join(f"{i}. <@{user}>: {n}" for i, (user, n) in enumerate(usage.per_user, 1))
        blocks.append(DividerBlock())
        blocks.append(SectionBlock(text=mrkdwn(f"*Top users this period*\n{lines}")))
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
    return Message(text=text, blocks=render(blocks))


def member_status_message(usage: UserUsage) -> Message:
    ws = usage.workspace
    noun = "sequence" if usage.used == 1 else "sequences"
    text = (
        f"You've written *{usage.used}* {noun} this period. Your workspace has "
        f"*{ws.remaining} of {ws.limit}* left; the quota resets on {slack_date(ws.resets_at)}. "
        f"Leads personalised this month: *{ws.leads_used:,} of {ws.leads_limit:,}*."
    )
    return Message(
        text=f"You've written {usage.used} {noun} this period; {ws.remaining} left.",
        blocks=render([SectionBlock(text=mrkdwn(text))]),
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
    return Message(text="How to use /coldcopy", blocks=render([SectionBlock(text=mrkdwn(text))]))
