"""The App Home tab as a pure function of what a person may see: what ColdCopy does, the
workspace's quota, their recent sequences and, for admins and owners, the workspace's usage,
billing and settings. Built with slack_sdk's models so a limit violation fails in a test."""

from __future__ import annotations

from dataclasses import dataclass, field

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.slack import constants as K
from bot.slack.block_kit import escape, money, plain, slack_date, truncate
from bot.slack.blocks import export_menu
from bot.writing.brief import LANGUAGES
from bot.writing.defaults import WorkspaceDefaults
from storage.models import GenerationStatus
from storage.usage import RecentSequence, UserUsage, WorkspaceUsage

INTRO = (
    "ColdCopy writes a *7-email cold outreach sequence* for the prospect you describe: one "
    "thread in the channel you pick, one reply per email, two subject lines to A/B test, in "
    f"any of {len(LANGUAGES)} languages. Type `/coldcopy` anywhere, or start here."
)


@dataclass(frozen=True)
class HomeSequence:
    """A recent sequence and the link to its thread (None when Slack gave none)."""

    sequence: RecentSequence
    permalink: str | None = None


@dataclass(frozen=True)
class AdminHome:
    """What only admins and owners see."""

    usage: WorkspaceUsage
    defaults: WorkspaceDefaults
    billing_enabled: bool

    @property
    def paying(self) -> bool:
        return self.usage.plan == "pro" and self.usage.stripe_customer_id is not None


@dataclass(frozen=True)
class HomeState:
    usage: UserUsage
    recent: list[HomeSequence] = field(default_factory=list)
    admin: AdminHome | None = None


def _md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(text, K.MAX_SECTION_TEXT))


def _plan(usage: WorkspaceUsage) -> str:
    plan = "Pro" if usage.plan == "pro" else "Free"
    if usage.subscription_status and usage.subscription_status not in ("active", "trialing"):
        plan += f" ({escape(usage.subscription_status.replace('_', ' '))})"
    return plan


def _sequence_block(item: HomeSequence) -> Block:
    seq = item.sequence
    title = f"*{escape(seq.company)}* · {escape(seq.job_title)}"
    facts = [slack_date(seq.created_at, "{date_short}")]
    if seq.language in LANGUAGES:
        facts.append(LANGUAGES[seq.language])
    if seq.status == GenerationStatus.SUCCEEDED:
        if item.permalink:
            facts.append(f"<{item.permalink}|Open thread>")
    elif seq.status == GenerationStatus.FAILED:
        facts.append("didn't finish; nothing was counted")
    else:
        facts.append("writing…")
    export = export_menu(seq.generation_id) if seq.status == GenerationStatus.SUCCEEDED else None
    return SectionBlock(text=_md(f"{title}\n{' · '.join(facts)}"), accessory=export)


def _for_everyone(state: HomeState) -> list[Block]:
    ws = state.usage.workspace
    noun = "sequence" if state.usage.used == 1 else "sequences"
    blocks: list[Block] = [
        HeaderBlock(text=plain("ColdCopy", K.MAX_HEADER_TEXT)),
        SectionBlock(text=_md(INTRO)),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Write a sequence",
                    action_id=K.OPEN_FORM_ACTION,
                    value="home",
                    style="primary",
                )
            ]
        ),
        DividerBlock(),
        SectionBlock(
            fields=[
                _md(f"*Plan*\n{_plan(ws)}"),
                _md(f"*Used this period*\n{ws.used} of {ws.limit}"),
                _md(f"*Resets*\n{slack_date(ws.resets_at)}"),
                _md(f"*Yours this period*\n{state.usage.used} {noun}"),
                _md(f"*Leads this month*\n{ws.leads_used:,} of {ws.leads_limit:,}"),
            ]
        ),
        DividerBlock(),
        HeaderBlock(text=plain("Your recent sequences", K.MAX_HEADER_TEXT)),
    ]
    if state.recent:
        blocks.extend(_sequence_block(item) for item in state.recent)
    else:
        blocks.append(
            ContextBlock(elements=[_md("Nothing yet: your sequences will be listed here.")])
        )
    return blocks


def _settings_summary(defaults: WorkspaceDefaults) -> str:
    if defaults.is_empty:
        return (
            "*Workspace settings*\nNone yet. Set your product, benefit, call to action, tone "
            "and language once, and everyone's form starts from them."
        )
    labels = {
        "product": "product",
        "benefit": "benefit",
        "call_to_action": "call to action",
        "about_us": "about us",
        "never_use": "phrases to never use",
    }
    set_ = [label for key, label in labels.items() if getattr(defaults, key)]
    lines = [f"Set: {', '.join(set_)}" if set_ else "No text defaults set"]
    if defaults.tone:
        lines.append(f"Default tone: {escape(defaults.tone)}")
    if defaults.language:
        lines.append(f"Default language: {LANGUAGES.get(defaults.language, defaults.language)}")
    return "*Workspace settings*\n" + "\n".join(lines)


def _for_admins(admin: AdminHome) -> list[Block]:
    usage = admin.usage
    tokens = usage.tokens
    blocks: list[Block] = [
        DividerBlock(),
        HeaderBlock(text=plain("Your workspace (admins only)", K.MAX_HEADER_TEXT)),
        SectionBlock(
            fields=[
                _md(f"*In flight*\n{usage.in_flight}"),
                _md(
                    f"*Tokens*\n{tokens.input + tokens.output:,} ({tokens.input:,} in · "
                    f"{tokens.output:,} out · {tokens.cache_read:,} cached)"
                ),
                _md(f"*Model cost this period*\n{money(tokens.cost_usd)}"),
                _md(
                    f"*Lead lists*\n{usage.leads_used:,} of {usage.leads_limit:,} leads · "
                    f"{usage.lead_tokens.total:,} tokens · {money(usage.lead_tokens.cost_usd)}"
                ),
                _md(
                    f"*Feedback on emails*\n:thumbsup: {usage.feedback.positive} · "
                    f":thumbsdown: {usage.feedback.negative}"
                ),
            ]
        ),
    ]
    if usage.per_user:
        lines = "\n".join(f"{i}. <@{user}>: {n}" for i, (user, n) in enumerate(usage.per_user, 1))
        blocks.append(SectionBlock(text=_md(f"*Usage by person this period*\n{lines}")))
    else:
        blocks.append(SectionBlock(text=_md("*Usage by person this period*\nNo sequences yet.")))
    blocks.append(SectionBlock(text=_md(_settings_summary(admin.defaults))))
    buttons: list[ButtonElement] = []
    if admin.billing_enabled and admin.paying:
        buttons.append(
            ButtonElement(text="Manage billing", action_id=K.MANAGE_BILLING_ACTION, value="portal")
        )
    elif admin.billing_enabled:
        buttons.append(
            ButtonElement(
                text="Upgrade to Pro", action_id=K.UPGRADE_ACTION, value="upgrade", style="primary"
            )
        )
    buttons.append(
        ButtonElement(text="Workspace settings", action_id=K.SETTINGS_ACTION, value="settings")
    )
    # API keys of the sending tools and the approval rule, in their own modal.
    buttons.append(
        ButtonElement(text="Sending tools", action_id=K.CONNECTIONS_ACTION, value="tools")
    )
    blocks.append(ActionsBlock(elements=buttons))
    return blocks


def home_view(state: HomeState) -> dict:
    """The Home tab for one person, ready for views.publish."""
    blocks = _for_everyone(state)
    if state.admin is not None:
        blocks.extend(_for_admins(state.admin))
    if len(blocks) > K.MAX_BLOCKS_PER_HOME:
        raise ValueError(f"{len(blocks)} blocks exceed Slack's {K.MAX_BLOCKS_PER_HOME}")
    return View(type="home", blocks=blocks).to_dict()  # validates every block
