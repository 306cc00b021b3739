"""Quality notes: deterministic checks of each email against the best practice the prompt asks
for, summed up in one line a user can read under the email in Slack."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bot.writing.prompt import SYSTEM_PROMPT
from bot.writing.quality import (
    ALLOWED_PLACEHOLDERS,
    BODY_MAX_WORDS,
    BODY_MIN_WORDS,
    SPAM_TRIGGER_WORDS,
    SUBJECT_MAX_CHARS,
    assess_email,
)
from fakes.anthropic import sample_sequence


def words(n: int) -> str:
    return " ".join(["word"] * n)


def test_a_clean_email_gets_a_short_line_without_warnings():
    notes = assess_email("Re-keying orders at [Company]", "A quick question", words(92))

    assert notes.ok
    assert notes.summary() == "92 words · subjects 29/16 chars"


def test_the_words_and_subject_limits_are_inclusive():
    at_the_limits = assess_email("s" * SUBJECT_MAX_CHARS, "s", words(BODY_MIN_WORDS))
    longest = assess_email("s", "s" * SUBJECT_MAX_CHARS, words(BODY_MAX_WORDS))

    assert at_the_limits.ok and longest.ok


def test_a_body_outside_50_to_125_words_is_flagged():
    short = assess_email("Hello", "Hi", words(BODY_MIN_WORDS - 1))
    long = assess_email("Hello", "Hi", words(BODY_MAX_WORDS + 1))

    assert not short.ok and not long.ok
    assert short.summary().startswith("⚠ 49 words (aim for 50-125)")
    assert long.summary().startswith("⚠ 126 words (aim for 50-125)")


def test_a_subject_over_50_characters_is_flagged():
    notes = assess_email("Hello", "x" * (SUBJECT_MAX_CHARS + 1), words(80))

    assert not notes.subjects_ok
    assert notes.summary() == "80 words · ⚠ subjects 5/51 chars (max 50)"


def test_spam_trigger_words_are_found_as_whole_words_in_any_case():
    notes = assess_email(
        "FREE audit for your team",
        "Guaranteed results",
        "Act now: this is risk-free. " + words(60) + " Freedom and guaranteeing are fine.",
    )

    assert notes.spam_words == ("free", "guaranteed", "risk-free", "act now")
    assert notes.summary() == (
        "70 words · subjects 24/18 chars · ⚠ spam words: free, guaranteed, risk-free, act now"
    )


def test_placeholders_other_than_firstname_and_company_are_stray():
    notes = assess_email(
        "Hi [FirstName] at [Company]",
        "For {{title}}",
        f"Hi [FirstName], {words(60)} [Your Name] [Your Name] {{{{company}}}} [Company]",
    )

    assert notes.stray_placeholders == ("{{title}}", "[Your Name]", "{{company}}")
    assert "⚠ unfilled placeholders: {{title}}, [Your Name], {{company}}" in notes.summary()
    assert not notes.ok


def test_a_long_list_of_stray_placeholders_is_shortened_in_the_summary():
    notes = assess_email("s", "s", words(60) + " [A] [B] [C] [D] [E]")

    assert "⚠ unfilled placeholders: [A], [B], [C] +2 more" in notes.summary()


def test_more_than_one_question_suggests_more_than_one_ask():
    one = assess_email("s", "s", words(60) + " Would a call next week work?")
    two = assess_email("s", "s", words(60) + " Is this a priority? Would a call work?")

    assert one.ok
    assert not two.ok
    assert two.summary().endswith("⚠ 2 questions (one ask per email)")


def test_notes_are_frozen_and_store_as_plain_json():
    notes = assess_email("Hello [Name]", "Free", words(10) + "?")

    with pytest.raises(dataclasses.FrozenInstanceError):
        notes.word_count = 1  # type: ignore[misc]
    assert json.loads(json.dumps(notes.as_dict())) == {
        "word_count": 10,
        "subject_a_chars": 12,
        "subject_b_chars": 4,
        "spam_words": ["free"],
        "stray_placeholders": ["[Name]"],
        "question_count": 1,
        "ok": False,
    }


def test_the_fakes_sample_sequence_meets_every_check():
    for email in sample_sequence():
        notes = assess_email(email["subject_a"], email["subject_b"], email["body"])
        assert notes.ok, notes.summary()
        assert 60 <= notes.word_count <= 110


def test_the_prompt_asks_for_exactly_what_the_notes_check():
    assert f"{BODY_MIN_WORDS} to {BODY_MAX_WORDS} words" in SYSTEM_PROMPT
    assert f"at most {SUBJECT_MAX_CHARS} characters" in SYSTEM_PROMPT
    assert " and ".join(ALLOWED_PLACEHOLDERS) in SYSTEM_PROMPT
    assert all(word in SYSTEM_PROMPT for word in SPAM_TRIGGER_WORDS[:5])
    assert "one call to action" in SYSTEM_PROMPT
