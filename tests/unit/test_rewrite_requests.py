"""A rewrite asked in words: which email a mention names, what is left of the request once
the mention is stripped, and the rewritten email's blocks within Slack's limits however long
its body grows."""

from __future__ import annotations

import pytest

from bot.domain.rewrites import mention_request, named_email
from bot.slack.blocks import email_message
from bot.writing.events import SequenceEmail
from testkit.fakes.anthropic import sample_sequence


@pytest.mark.parametrize(
    ("text", "step"),
    [
        ("<@U0BOT> make email 3 shorter, mention our free trial", 3),
        ("Email #5 needs a warmer opening", 5),
        ("rewrite the 2nd email please", 2),
        ("step 7: break-up email, softer", 7),
        ("make it warmer", None),
        ("mention our 30 day trial", None),
    ],
)
def test_which_email_a_request_names(text, step):
    assert named_email(mention_request(text)) == step


def test_a_mention_is_stripped_from_the_request():
    assert mention_request("<@U0BOT|coldcopy>  make email 3   shorter") == "make email 3 shorter"


def test_a_finished_email_with_a_huge_body_keeps_its_controls_within_slacks_limits():
    email = SequenceEmail.from_dict(
        {**sample_sequence()[0], "step": 1, "body": ("word " * 600 + "\n\n") * 60}
    )
    message = email_message(1, email, "5f0c1d2e-0000-4000-8000-000000000000", edited_by="U1")
    kinds = [b["type"] for b in message.blocks]
    assert len(message.blocks) <= 50
    assert kinds[-2:] == ["actions", "context_actions"]
    assert "the rest of this email is in the export" in str(message.blocks)
