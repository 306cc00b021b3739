"""Workspace settings checked as the brief form is: every one optional, the brief's limits and
messages, stripped the same way; and whose words fill the form, the user's last brief or the
workspace's defaults."""

from __future__ import annotations

from bot.writing.brief import FIELDS_BY_KEY, Brief, BriefErrors, validate_brief
from bot.writing.defaults import WorkspaceDefaults, form_prefill, validate_defaults
from testkit.briefs import SAMPLE_BRIEF


def test_every_setting_may_be_left_empty():
    assert validate_defaults({}) == WorkspaceDefaults()
    assert validate_defaults({"product": "", "tone": None}).is_empty


def test_settings_are_checked_with_the_brief_forms_limits_and_messages():
    limit = FIELDS_BY_KEY["product"].max_length
    outcome = validate_defaults(
        {
            "product": "x" * (limit + 1),
            "benefit": "   ",
            "about_us": "a" * 501,
            "tone": "Shouty",
            "language": "xx",
        }
    )
    assert isinstance(outcome, BriefErrors)
    assert outcome.errors == {
        "product": f"Your product must be at most {limit} characters (it has {limit + 1}).",
        "benefit": "Key benefit can't be only spaces.",
        "about_us": "About us must be at most 500 characters (it has 501).",
        "tone": "Tone must be one of Professional, Friendly, Casual, Bold, Consultative.",
        "language": "Language must be one of English, German, French, Spanish, Portuguese, "
        "Italian, Dutch, Swedish, Polish, Japanese.",
    }


def test_settings_are_stripped_like_brief_fields():
    outcome = validate_defaults({"product": "  RouteSync  ", "language": "de", "tone": "Bold"})
    assert outcome == WorkspaceDefaults(product="RouteSync", language="de", tone="Bold")


def test_a_brief_without_a_language_is_written_in_english_and_a_bad_one_is_named():
    assert validate_brief(SAMPLE_BRIEF).language == "en"
    assert validate_brief({**SAMPLE_BRIEF, "language": "sv"}).language_name == "Swedish"
    outcome = validate_brief({**SAMPLE_BRIEF, "language": "klingon", "never_use": "  "})
    assert isinstance(outcome, BriefErrors)
    assert set(outcome.errors) == {"language", "never_use"}
    # A brief stored before languages existed still loads, as English.
    assert Brief(**SAMPLE_BRIEF).language == "en"


def test_the_users_last_brief_wins_over_the_workspaces_defaults():
    defaults = WorkspaceDefaults(product="RouteSync", call_to_action="A demo", language="de")
    assert form_prefill(None, defaults) == {
        "product": "RouteSync",
        "call_to_action": "A demo",
        "language": "de",
    }
    mine = {**SAMPLE_BRIEF, "language": "fr"}
    assert form_prefill(mine, defaults) == mine
    # A brief from before languages existed takes the workspace's language.
    assert form_prefill(SAMPLE_BRIEF, defaults)["language"] == "de"
    assert "language" not in form_prefill(SAMPLE_BRIEF, WorkspaceDefaults())
