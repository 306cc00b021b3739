"""The App Home's Block Kit, built as a pure function: what a member sees, what an admin sees
in addition, and that it stays within Slack's limits whatever the data holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from slack_sdk.models.views import View

from bot.slack import constants as K
from bot.slack.home import AdminHome, HomeSequence, HomeState, home_view
from bot.writing.defaults import WorkspaceDefaults
from storage.tokens import TokenUsage
from storage.usage import RecentSequence, UserUsage, WorkspaceUsage
from testkit.fakes.slack import _view_problems

RESETS = datetime(2026, 12, 1, tzinfo=UTC)


def workspace(**overrides) -> WorkspaceUsage:
    values = {
        "team_id": "T0001",
        "plan": "free",
        "used": 2,
        "limit": 3,
        "resets_at": RESETS,
        "in_flight": 1,
        "per_user": [("U1", 2)],
        "tokens": TokenUsage(
            input=3100, output=2900, cache_write=0, cache_read=1200, cost_usd=Decimal("0.0531")
        ),
    }
    values.update(overrides)
    return WorkspaceUsage(**values)


def sequence(n: int, status: str = "succeeded", **overrides) -> RecentSequence:
    values = {
        "generation_id": f"gen-{n}",
        "company": f"Company {n}",
        "job_title": "Head of Operations",
        "language": "de",
        "status": status,
        "created_at": datetime(2026, 11, 20 + n % 5, tzinfo=UTC),
        "channel_id": "C1",
        "parent_ts": f"1700000000.{n:06d}",
    }
    values.update(overrides)
    return RecentSequence(**values)


def member_state(**overrides) -> HomeState:
    ws = workspace()
    values = {
        "usage": UserUsage(user_id="U1", used=2, workspace=ws),
        "recent": [
            HomeSequence(sequence(1), "https://coldcopy-test.slack.com/archives/C1/p1"),
            HomeSequence(sequence(2, "failed")),
        ],
    }
    values.update(overrides)
    return HomeState(**values)


def admin_state(**overrides) -> HomeState:
    admin = AdminHome(
        usage=workspace(per_user=[("U1", 2), ("UADMIN", 1)]),
        defaults=WorkspaceDefaults(product="RouteSync", language="de", tone="Friendly"),
        billing_enabled=True,
    )
    return member_state(admin=admin, **overrides)


def action_ids(view: dict) -> list[str]:
    ids = []
    for block in view["blocks"]:
        for element in block.get("elements", []):
            if element.get("type") == "button":
                ids.append(element["action_id"])
        accessory = block.get("accessory")
        if accessory and accessory.get("type") in ("button", "static_select"):
            ids.append(accessory["action_id"])
    return ids


def text_of(view: dict) -> str:
    return json.dumps(view, ensure_ascii=False)


def test_a_member_sees_what_coldcopy_does_the_quota_and_their_sequences():
    view = home_view(member_state())

    assert view["type"] == "home"
    text = text_of(view)
    assert "7-email cold outreach sequence" in text
    assert "*Plan*\\nFree" in text and "2 of 3" in text
    assert "<!date^1796083200^{date_long}|December 1, 2026 UTC>" in text
    assert "*Company 1* · Head of Operations" in text and "German" in text
    assert "<https://coldcopy-test.slack.com/archives/C1/p1|Open thread>" in text
    assert "didn't finish" in text
    # Write a sequence, and the "Export as…" menu only for the finished sequence.
    assert action_ids(view) == [K.OPEN_FORM_ACTION, K.EXPORT_ACTION]
    export = next(b["accessory"] for b in view["blocks"] if b.get("accessory"))
    assert {o["value"].split(":")[0] for o in export["options"]} == {"gen-1"}
    # Nothing meant for admins.
    assert "Tokens" not in text and "Usage by person" not in text
    assert K.SETTINGS_ACTION not in action_ids(view)
    assert _view_problems(view) == []


def test_an_admin_also_sees_usage_by_person_tokens_cost_billing_and_settings():
    view = home_view(admin_state())

    text = text_of(view)
    assert "*Usage by person this period*\\n1. <@U1>: 2\\n2. <@UADMIN>: 1" in text
    assert "6,000 (3,100 in · 2,900 out · 1,200 cached)" in text
    assert "$0.05" in text
    assert "Set: product" in text and "Default tone: Friendly" in text
    assert "Default language: German" in text
    assert action_ids(view) == [
        K.OPEN_FORM_ACTION,
        K.EXPORT_ACTION,
        K.UPGRADE_ACTION,
        K.SETTINGS_ACTION,
        K.CONNECTIONS_ACTION,
    ]
    assert _view_problems(view) == []


def test_a_paying_workspace_offers_manage_billing_instead_of_upgrade():
    admin = AdminHome(
        usage=workspace(plan="pro", limit=200, stripe_customer_id="cus_1"),
        defaults=WorkspaceDefaults(),
        billing_enabled=True,
    )
    view = home_view(member_state(admin=admin))

    ids = action_ids(view)
    assert K.MANAGE_BILLING_ACTION in ids and K.UPGRADE_ACTION not in ids
    assert "None yet" in text_of(view)  # no settings saved yet


def test_without_billing_admins_still_get_the_settings_button():
    admin = AdminHome(usage=workspace(), defaults=WorkspaceDefaults(), billing_enabled=False)
    ids = action_ids(home_view(member_state(admin=admin)))
    assert ids[-2:] == [K.SETTINGS_ACTION, K.CONNECTIONS_ACTION]
    assert K.UPGRADE_ACTION not in ids and K.MANAGE_BILLING_ACTION not in ids


def test_someone_without_sequences_is_told_where_they_will_appear():
    view = home_view(member_state(recent=[]))
    assert "Nothing yet" in text_of(view)
    assert action_ids(view) == [K.OPEN_FORM_ACTION]


def test_a_sequence_still_being_written_has_no_link_and_no_export_yet():
    view = home_view(member_state(recent=[HomeSequence(sequence(3, "running"))]))
    assert "writing…" in text_of(view)
    assert action_ids(view) == [K.OPEN_FORM_ACTION]


def test_what_users_typed_cannot_mention_anyone_or_break_the_layout():
    hostile = sequence(4, company="<!channel> & *Acme*", job_title="<@U999>" + "x" * 120)
    view = home_view(member_state(recent=[HomeSequence(hostile, None)]))

    text = text_of(view)
    assert "<!channel>" not in text and "<@U999>" not in text
    assert "&lt;!channel&gt; &amp;" in text
    assert _view_problems(view) == []


def test_the_largest_home_stays_within_slacks_limits_and_validates_with_slack_sdk():
    ws = workspace(per_user=[(f"U{i:08d}", 1000 - i) for i in range(10)])
    admin = AdminHome(
        usage=ws,
        defaults=WorkspaceDefaults(
            product="p" * 600,
            benefit="b" * 300,
            call_to_action="c" * 200,
            tone="Consultative",
            language="ja",
            about_us="a" * 500,
            never_use="n" * 500,
        ),
        billing_enabled=True,
    )
    recent = [
        HomeSequence(
            sequence(i, company="C" * 100, job_title="J" * 100),
            "https://x.slack.com/archives/C1/p" + "9" * 16,
        )
        for i in range(5)
    ]
    view = home_view(member_state(recent=recent, admin=admin))

    assert len(view["blocks"]) <= 100
    View(**view).to_dict()  # slack_sdk's own validation of every block and element
    assert _view_problems(view) == []
