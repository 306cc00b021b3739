"""Benchmark of sending a sequence to a tool: from the "Send to…" choice on a finished 7-email
sequence to the draft's link in its thread, through the served app (ServedApp on SQLite, the
Slack and Claude fakes) with each tool's fake answering every call after 150 ms. Target: within
3 s for each tool. Also: 1,000 leads reach Instantly in at most 2 requests (its client against
the fake at 150 ms a call), and the JSON each tool was sent for the sample sequence.

    python -m bench.send_bench [--latency 0.15]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import select

from bot.core.settings import Settings
from bot.sequencers import SEQUENCERS, Lead, draft_from_sequence
from bot.slack import constants as K
from storage.connections import save_connection
from storage.db import make_engine
from storage.drafts import draft_for
from storage.encryption import TokenCipher
from storage.generations import get_generation
from storage.migrate import upgrade
from storage.models import Generation
from testkit.briefs import SAMPLE_BRIEF
from testkit.fakes.anthropic import FakeAnthropic, sample_sequence
from testkit.fakes.apollo import FakeApollo
from testkit.fakes.instantly import FakeInstantly
from testkit.fakes.lemlist import FakeLemlist
from testkit.fakes.slack import FakeSlack
from testkit.fakes.smartlead import FakeSmartlead
from testkit.harness import ServedApp
from testkit.waiting import wait_until

LATENCY = 0.15
TARGET_CLICK_TO_LINK_S = 3.0
TARGET_LEAD_REQUESTS = 2
LEADS = 1000
FAKES = {
    "instantly": FakeInstantly,
    "smartlead": FakeSmartlead,
    "lemlist": FakeLemlist,
    "apollo": FakeApollo,
}
# The request whose JSON the report shows, per tool (the one carrying the steps).
SHOWN = {
    "instantly": ("POST", "/api/v2/campaigns"),
    "smartlead": ("POST", r"/api/v1/campaigns/\d+/sequences"),
    "lemlist": ("POST", r"/api/sequences/[^/]+/steps"),
    "apollo": ("POST", "/api/v1/emailer_campaigns"),
}


def finished_sequence(app: ServedApp, slack: FakeSlack, claude: FakeAnthropic, engine) -> dict:
    claude.enqueue_sequence()
    before = len(slack.calls_to("views.open"))
    app.slash("", user="U1", channel="C1")
    view = slack.wait_for("views.open", count=before + 1)[-1].params["view"]
    app.submit(view, SAMPLE_BRIEF)
    found: dict = {}

    def done() -> bool:
        with engine.connect() as conn:
            row = conn.execute(
                select(Generation.__table__.c.id, Generation.__table__.c.status)
            ).first()
        if row and row.status == "succeeded":
            found["gen"] = get_generation(engine, row.id)
        return bool(found)

    wait_until(done, timeout=60, what="the sequence to finish")
    gen = found["gen"]
    wait_until(
        lambda: ":white_check_mark:" in str(slack.message(gen.posted_channel_id, gen.parent_ts)),
        timeout=30,
    )
    return {"gen": gen, "channel": gen.posted_channel_id, "parent": gen.parent_ts}


def click_to_link(latency: float) -> dict:
    """Seconds from each tool's "Send to…" choice to its link in the thread, and its JSON."""
    key = Fernet.generate_key().decode()
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as slack, FakeAnthropic() as claude:
        slack.add_user("U1")
        fakes = {name: cls(latency=latency) for name, cls in FAKES.items()}
        for fake in fakes.values():
            fake.__enter__()
        try:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}", pool_size=8)
            upgrade(engine)
            settings = Settings(
                _env_file=None,
                slack_bot_token="xoxb-bench",
                slack_signing_secret="bench-signing-secret",
                anthropic_api_key="sk-ant-bench",
                slack_api_url=slack.base_url,
                anthropic_base_url=claude.base_url,
                database_url=str(engine.url),
                encryption_key=key,
                **{f"{name}_url": fake.base_url for name, fake in fakes.items()},
            )
            for name, fake in fakes.items():
                save_connection(
                    engine, TokenCipher(key), "T0001", name, fake.api_key, added_by="UADMIN"
                )
            with ServedApp(settings, engine, slack=slack) as app:
                world = finished_sequence(app, slack, claude, engine)
                for name, fake in fakes.items():
                    started = time.monotonic()
                    app.choose(
                        K.SEND_ACTION,
                        f"{world['gen'].id}:{name}",
                        user="U1",
                        channel=world["channel"],
                        message_ts=world["parent"],
                    )
                    label = SEQUENCERS[name].label

                    def linked(label: str = label) -> bool:
                        thread = slack.thread(world["channel"], world["parent"])
                        return f"Draft campaign created in {label}" in json.dumps(thread)

                    wait_until(linked, timeout=30, what=f"the {label} link")
                    took = time.monotonic() - started
                    method, path = SHOWN[name]
                    calls = len(fake.requests)
                    figures[name] = {
                        "seconds": took,
                        "calls": calls,
                        "url": draft_for(engine, world["gen"].id, name).url,
                        "json": fake.requests_to(method, path)[0].body,
                    }
            engine.dispose()
        finally:
            for fake in fakes.values():
                fake.__exit__(None, None, None)
    return figures


def thousand_leads(latency: float) -> dict:
    leads = [
        Lead(f"lead{n}@example.com", f"Lead{n}", personalization=f"Hi #{n}") for n in range(LEADS)
    ]
    draft = draft_from_sequence("Bench · 1,000 leads", sample_sequence(), "Europe/Berlin", leads)
    with FakeInstantly(latency=latency) as fake:
        client = SEQUENCERS["instantly"].connect(fake.api_key, fake.base_url)
        started = time.monotonic()
        result = client.create_draft(draft)
        took = time.monotonic() - started
        client.close()
        batches = fake.requests_to("POST", r"/api/v2/leads/add")
        return {
            "lead_requests": len(batches),
            "leads_added": result.leads_added,
            "seconds": took,
        }


def measure(latency: float = LATENCY) -> dict:
    sends = click_to_link(latency)
    leads = thousand_leads(latency)
    return {
        "latency_s": latency,
        "sends": sends,
        "leads": leads,
        "meets_target": all(s["seconds"] <= TARGET_CLICK_TO_LINK_S for s in sends.values())
        and leads["lead_requests"] <= TARGET_LEAD_REQUESTS
        and leads["leads_added"] == LEADS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=LATENCY)
    args = parser.parse_args(argv)
    result = measure(args.latency)
    for name, s in result["sends"].items():
        print(f"{name}: choice -> link in thread {s['seconds']:.2f} s ({s['calls']} calls)")
        print(json.dumps(s["json"], ensure_ascii=False)[:600])
    leads = result["leads"]
    print(
        f"instantly: {leads['leads_added']} leads in {leads['lead_requests']} requests, "
        f"{leads['seconds']:.2f} s"
    )
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
