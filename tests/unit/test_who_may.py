"""The who-may-do-what table (storage/access.py) and the payload numbers it is fed, as plain
rules: no database, no Slack."""

from __future__ import annotations

import pytest

from bot.domain.rewrites import email_step, named_email
from storage.access import ADMINS_ONLY, ANYONE_IN_THE_WORKSPACE, OWNER_OR_ADMIN, Act, may


def never_asked() -> bool:
    raise AssertionError("whether the person is an admin was asked when it did not matter")


@pytest.mark.parametrize("act", sorted(OWNER_OR_ADMIN))
def test_a_sequences_own_acts_are_its_owners_or_an_admins(act):
    assert may(act, is_owner=True, is_admin=never_asked)
    assert may(act, is_owner=False, is_admin=lambda: True)
    assert not may(act, is_owner=False, is_admin=lambda: False)


@pytest.mark.parametrize("act", sorted(ANYONE_IN_THE_WORKSPACE))
def test_export_and_feedback_are_anyones(act):
    assert may(act, is_owner=False, is_admin=never_asked)


@pytest.mark.parametrize("act", [Act.BILLING_PORTAL, Act.SETTINGS, Act.WORKSPACE_USAGE])
def test_billing_portal_settings_and_the_workspaces_usage_are_admins_only(act):
    assert act in ADMINS_ONLY
    assert may(act, is_owner=False, is_admin=lambda: True)
    assert not may(act, is_owner=True, is_admin=lambda: False)


@pytest.mark.parametrize(
    ("value", "step"),
    [("1", 1), ("7", 7), (3, 3), ("8", None), ("0", None), ("07", None), ("-1", None)],
)
def test_an_email_number_from_a_payload_is_one_to_seven(value, step):
    assert email_step(value) == step


@pytest.mark.parametrize(
    "value", ["99999999999", "1e3", " 3", "3 ", "³", "٣", "", None, 3.0, True, [], "1|2"]
)
def test_anything_else_is_no_email_number(value):
    assert email_step(value) is None


def test_a_mention_naming_an_email_the_sequence_does_not_have_names_none():
    assert named_email("make email 3 shorter") == 3
    assert named_email("make email 99 shorter") is None
