"""The brief form as a Slack modal, the views that replace it, and reading a submission back.

Block ids and action ids are the brief's own field keys, so the form, the validation errors
and the prompt can never disagree about a field's name.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.blocks.block_elements import ConversationSelectElement
from slack_sdk.models.views import View

from bot.domain.rewrites import MAX_CHANGE_CHARS, email_step
from bot.slack import constants as K
from bot.slack.account_messages import upgrade_blocks
from bot.slack.block_kit import escape
from bot.writing.brief import (
    BRIEF_FIELDS,
    DEFAULT_LANGUAGE,
    DEFAULT_TONE,
    FIELDS_BY_KEY,
    LANGUAGES,
    TONES,
)
from bot.writing.defaults import TEXT_FIELDS, WorkspaceDefaults
from storage.quota import QuotaExhausted

TITLE = "ColdCopy"


def _view(blocks: list[Block], *, submit: str | None, close: str, metadata: str = "") -> dict:
    view = View(
        type="modal",
        callback_id=K.BRIEF_VIEW if submit else K.INFO_VIEW,
        title=TITLE,
        submit=submit,
        close=close,
        blocks=blocks,
        private_metadata=metadata or None,
    )
    return view.to_dict()  # validates title/button lengths and every block


@functools.cache
def _blank_form() -> str:
    """The empty form, built and validated with slack_sdk's models once per process; each
    `/coldcopy` fills a copy (building the models every time cost ~4 ms of CPU)."""
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(
                text="Tell me about the prospect and your offer; I'll write a 7-email "
                "sequence and post it as a thread."
            )
        )
    ]
    for field in BRIEF_FIELDS:
        blocks.append(
            InputBlock(
                block_id=field.key,
                label=field.label,
                element=PlainTextInputElement(
                    action_id=field.key,
                    placeholder=field.placeholder,
                    multiline=field.multiline,
                    max_length=field.max_length,
                ),
            )
        )
    options = [Option(text=t, value=t) for t in TONES]
    blocks.append(
        InputBlock(
            block_id=K.TONE_BLOCK,
            label="Tone",
            element=StaticSelectElement(
                action_id=K.TONE_BLOCK,
                options=options,
                initial_option=next(o for o in options if o.value == DEFAULT_TONE),
            ),
        )
    )
    languages = _language_options()
    blocks.append(
        InputBlock(
            block_id=K.LANGUAGE_BLOCK,
            label="Language",
            element=StaticSelectElement(
                action_id=K.LANGUAGE_BLOCK,
                options=languages,
                initial_option=next(o for o in languages if o.value == DEFAULT_LANGUAGE),
            ),
            hint="The emails are written in this language.",
        )
    )
    blocks.append(
        InputBlock(
            block_id=K.CHANNEL_BLOCK,
            label="Post to",
            element=ConversationSelectElement(
                action_id=K.CHANNEL_BLOCK,
                default_to_current_conversation=True,
                placeholder="Pick a channel",
            ),
            hint="The sequence is posted here as a thread.",
        )
    )
    return json.dumps(_view(blocks, submit="Write sequence", close="Cancel"))


def brief_view(previous: dict | None, channel_id: str | None) -> dict:
    """The form, pre-filled with `previous` (this user's last brief, else the workspace's
    defaults, with the language to offer) and posting to `channel_id`."""
    previous = previous or {}
    view = json.loads(_blank_form())
    for block in view["blocks"]:
        element = block.get("element") or {}
        key = block.get("block_id")
        if key in FIELDS_BY_KEY:
            initial = previous.get(key)
            # Only what the input itself would accept, so the view stays within its limits.
            if isinstance(initial, str) and 0 < len(initial) <= FIELDS_BY_KEY[key].max_length:
                element["initial_value"] = initial
        elif key == K.TONE_BLOCK and previous.get("tone") in TONES:
            element["initial_option"] = next(
                o for o in element["options"] if o["value"] == previous["tone"]
            )
        elif key == K.LANGUAGE_BLOCK and previous.get("language") in LANGUAGES:
            element["initial_option"] = next(
                o for o in element["options"] if o["value"] == previous["language"]
            )
        elif key == K.CHANNEL_BLOCK and channel_id:
            element["initial_conversation"] = channel_id
    if channel_id:
        view["private_metadata"] = json.dumps({"channel_id": channel_id})
    return view


# The forms `/coldcopy` opens, kept by shape (what the form shows and where it posts): a rush
# of new users in one channel costs one build between them.
FORMS_REMEMBERED = 512
# What brief_view reads of `previous`: the form's inputs.
SHAPE_KEYS = (*(f.key for f in BRIEF_FIELDS), "tone", "language")


def shared_brief_view(previous: dict | None, channel_id: str | None) -> dict:
    """`brief_view`, built once per shape and shared by every caller: send it, never change it."""
    previous = previous or {}
    shape = tuple((key, value) for key in SHAPE_KEYS if isinstance(value := previous.get(key), str))
    return _brief_view_of_shape(shape, channel_id)


@functools.lru_cache(maxsize=FORMS_REMEMBERED)
def _brief_view_of_shape(shape: tuple[tuple[str, str], ...], channel_id: str | None) -> dict:
    return brief_view(dict(shape), channel_id)


@dataclass(frozen=True)
class Submission:
    """What the user typed, as raw text (validated in bot.writing.brief), and where to post."""

    fields: dict[str, str | None]
    channel_id: str | None


def read_submission(view: dict) -> Submission:
    values = (view.get("state") or {}).get("values") or {}
    fields: dict[str, str | None] = {}
    for field in BRIEF_FIELDS:
        fields[field.key] = (values.get(field.key, {}).get(field.key) or {}).get("value")
    for key in (K.TONE_BLOCK, K.LANGUAGE_BLOCK):
        fields[key] = _selected(values, key)
    channel = (values.get(K.CHANNEL_BLOCK, {}).get(K.CHANNEL_BLOCK) or {}).get(
        "selected_conversation"
    )
    if not channel:
        try:
            channel = json.loads(view.get("private_metadata") or "{}").get("channel_id")
        except ValueError:
            channel = None
    return Submission(fields=fields, channel_id=channel)


def _selected(values: dict, block_id: str) -> str | None:
    """The value of a static select (None when nothing is picked)."""
    chosen = (values.get(block_id, {}).get(block_id) or {}).get("selected_option") or {}
    return chosen.get("value")


def _language_options() -> list[Option]:
    return [Option(text=name, value=code) for code, name in LANGUAGES.items()]


# --- workspace settings ---------------------------------------------------------------------

NO_DEFAULT = "none"  # the option that clears a tone or language default


def settings_view(defaults: WorkspaceDefaults) -> dict:
    """The admins' form for the workspace's defaults, filled with what is saved; every field
    optional, each with the brief's own limit."""
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(
                text="Defaults for everyone in this workspace. Product, benefit, call to "
                "action, tone and language fill the brief form of anyone who hasn't written a "
                "brief yet; *About us* and *Phrases to never use* go with every brief."
            )
        )
    ]
    for field in TEXT_FIELDS:
        element = PlainTextInputElement(
            action_id=field.key,
            placeholder=field.placeholder,
            multiline=field.multiline,
            max_length=field.max_length,
            initial_value=getattr(defaults, field.key) or None,
        )
        label = "Default call to action" if field.key == "call_to_action" else field.label
        blocks.append(InputBlock(block_id=field.key, label=label, element=element, optional=True))
    none = Option(text="No default", value=NO_DEFAULT)
    for key, label, options, current in (
        ("tone", "Default tone", [Option(text=t, value=t) for t in TONES], defaults.tone),
        ("language", "Default language", _language_options(), defaults.language),
    ):
        choices = [none, *options]
        blocks.append(
            InputBlock(
                block_id=key,
                label=label,
                element=StaticSelectElement(
                    action_id=key,
                    options=choices,
                    initial_option=next((o for o in choices if o.value == current), none),
                ),
                optional=True,
            )
        )
    # The sending tools' keys and the approval rule have their own modal, pushed over this one.
    blocks.append(
        ActionsBlock(
            elements=[
                ButtonElement(text="Sending tools…", action_id=K.CONNECTIONS_ACTION, value="t")
            ]
        )
    )
    view = View(
        type="modal",
        callback_id=K.SETTINGS_VIEW,
        title="Workspace settings",
        submit="Save",
        close="Cancel",
        blocks=blocks,
    )
    return view.to_dict()


def read_settings_submission(view: dict) -> dict[str, str | None]:
    """The raw settings as typed (validated in bot.writing.defaults)."""
    values = (view.get("state") or {}).get("values") or {}
    raw: dict[str, str | None] = {}
    for field in TEXT_FIELDS:
        raw[field.key] = (values.get(field.key, {}).get(field.key) or {}).get("value")
    for key in ("tone", "language"):
        picked = _selected(values, key)
        raw[key] = None if picked in (None, NO_DEFAULT) else picked
    return raw


@functools.cache
def _message_view_template(close: str) -> str:
    return json.dumps(
        _view([SectionBlock(text=MarkdownTextObject(text="-"))], submit=None, close=close)
    )


def _message_view(text: str, close: str = "Close") -> dict:
    """A one-section modal; the template is validated once, the text checked here."""
    if not 0 < len(text) <= K.MAX_SECTION_TEXT:
        raise ValueError(f"a section holds 1 to {K.MAX_SECTION_TEXT} characters")
    view = json.loads(_message_view_template(close))
    view["blocks"][0]["text"]["text"] = text
    return view


def writing_view(company: str, channel_id: str) -> dict:
    return _message_view(
        f":writing_hand: Writing your sequence for *{escape(company)}*. It will "
        f"appear in <#{channel_id}> in a few seconds, one email at a time.",
        close="Done",
    )


def upgrade_view(exhausted: QuotaExhausted, billing_enabled: bool) -> dict:
    return _view(upgrade_blocks(exhausted, billing_enabled), submit=None, close="Close")


@functools.lru_cache(maxsize=64)
def shared_upgrade_view(exhausted: QuotaExhausted, billing_enabled: bool) -> dict:
    """`upgrade_view`, built once per standing and shared: send it, never change it."""
    return upgrade_view(exhausted, billing_enabled)


def message_view(text: str) -> dict:
    return _message_view(text)


def working_view(text: str) -> dict:
    """What a modal says while the work behind a click is being done."""
    return _message_view(f":hourglass_flowing_sand: {text}")


def checkout_view(message) -> dict:
    """The Stripe link (a `blocks.Message` from checkout_link_message) inside the modal."""
    blocks = [Block.parse(b) for b in message.blocks]
    blocks.append(
        ContextBlock(elements=[MarkdownTextObject(text="Pro applies the moment you've paid.")])
    )
    return _view(blocks, submit=None, close="Close")


# --- rewriting one email in the user's own words --------------------------------------------


@dataclass(frozen=True)
class RewriteTarget:
    """Which email a rewrite modal is about, carried in its private_metadata."""

    generation_id: str
    step: int


def rewrite_view(target: RewriteTarget) -> dict:
    view = View(
        type="modal",
        callback_id=K.REWRITE_VIEW,
        title=f"Rewrite email {target.step}",
        submit="Rewrite",
        close="Cancel",
        blocks=[
            InputBlock(
                block_id=K.REWRITE_BLOCK,
                label="How should it change?",
                element=PlainTextInputElement(
                    action_id=K.REWRITE_BLOCK,
                    multiline=True,
                    max_length=MAX_CHANGE_CHARS,
                    placeholder="e.g. shorter, and mention our free trial",
                ),
            ),
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text="The other emails of the sequence stay as they are. "
                        "Rewrites don't use your quota."
                    )
                ]
            ),
        ],
        private_metadata=json.dumps({"generation_id": target.generation_id, "step": target.step}),
    )
    return view.to_dict()


def read_rewrite(view: dict) -> tuple[RewriteTarget | None, str]:
    """The email a rewrite modal was about (None if its metadata is unusable) and the text."""
    values = (view.get("state") or {}).get("values") or {}
    change = (values.get(K.REWRITE_BLOCK, {}).get(K.REWRITE_BLOCK) or {}).get("value") or ""
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
        step = email_step(meta["step"])
        target = RewriteTarget(str(meta["generation_id"]), step) if step else None
    except (ValueError, KeyError, TypeError, AttributeError):
        target = None
    return target, change
