"""A lead list runs as a durable job: every lead written and billed once, what was not written
given back on cancel, and a list whose worker is killed with `kill -9` resumed by another
worker where it stopped: none lost, none written or billed twice."""

from __future__ import annotations

import contextlib
import os
import signal
import threading

from helpers import BRIEF, make_settings
from sqlalchemy import select

from bot.core.dispatch import LEAD_LIST
from bot.flows.lead_job import run_lead_list
from bot.flows.leases import LeaseKeeper
from bot.flows.pool import DRAIN_SECONDS, drain
from bot.runtime.queue import JobQueue
from bot.runtime.wiring import build_services
from bot.slack.account_messages import admin_status_message
from bot.slack.lead_thread import RESUMED_NOTE
from bot.writing.lead_files import LEAD_FORMATS
from storage.db import make_engine, reading
from storage.lead_leases import claim_lead_list
from storage.lead_lists import (
    LeadPolicy,
    create_lead_list,
    get_lead_list,
    leads_standing,
    request_cancel,
)
from storage.lead_models import LeadListJob, LeadListStatus
from storage.lead_results import count_written, saved_answers
from storage.ledger import Delivery, commit_generation, reserve_generation
from storage.migrate import upgrade
from storage.quota import QuotaPolicy
from storage.usage import workspace_usage
from testkit.fakes.anthropic import FakeAnthropic, FakeUsage, sample_sequence
from testkit.fakes.slack import FakeSlack
from testkit.processes import Processes, children, coldcopy_env
from testkit.waiting import wait_until

L = LeadListJob.__table__
POLICY = LeadPolicy(free=25, pro=2000)


def lead_csv(count: int) -> bytes:
    rows = ["Email,First Name,Company,Notes"]
    rows += [f"lead{n}@example{n}.com,Ann{n},Company {n},Opened office {n}" for n in range(count)]
    return ("\n".join(rows) + "\n").encode()


def finished_sequence(engine) -> str:
    reserved = reserve_generation(
        engine,
        QuotaPolicy(free=3, pro=200),
        team_id="T1",
        user_id="U1",
        channel_id="C1",
        idempotency_key="gen-1",
        brief=dict(BRIEF),
    )
    emails = [{"step": n, **email} for n, email in enumerate(sample_sequence(), 1)]
    commit_generation(engine, reserved.generation_id, Delivery(emails, "claude-test"))
    return reserved.generation_id


def a_list(engine, count: int, **where) -> str:
    made = create_lead_list(
        engine,
        POLICY,
        team_id="T1",
        user_id="U1",
        generation_id=finished_sequence(engine),
        leads=count,
        source=lead_csv(count),
        filename="leads.csv",
        idempotency_key="list-1",
        **where,
    )
    return made.list_id


def status_of(engine, list_id: str) -> str:
    with reading(engine) as conn:
        return conn.execute(select(L.c.status).where(L.c.id == list_id)).scalar_one()


def test_every_lead_is_written_and_billed_once(engine):
    with FakeAnthropic() as claude:
        # The API reports the shared prefix read from the cache after the first lead.
        usage = FakeUsage(input_tokens=150, cache_read_input_tokens=2300)
        claude.default_reply = claude.opening_reply(usage=usage)
        services = build_services(
            make_settings(database_url=str(engine.url), anthropic_base_url=claude.base_url),
            engine=engine,
        )
        keeper = LeaseKeeper(engine, 15).start()
        list_id = a_list(engine, 12)
        run_lead_list(services, keeper, list_id)
        keeper.stop()
    assert status_of(engine, list_id) == LeadListStatus.SUCCEEDED
    answers = saved_answers(engine, list_id)
    assert sorted(answers) == list(range(12))
    assert {a.email for a in answers.values()} == {f"lead{n}@example{n}.com" for n in range(12)}
    assert leads_standing(engine, POLICY, "T1")[1] == 12
    # Status, the Home tab and `coldcopy usage` read the same figures.
    usage = workspace_usage(engine, QuotaPolicy(free=3, pro=200), "T1")
    assert (usage.leads_used, usage.leads_limit) == (12, 25)
    assert (usage.lead_tokens.input, usage.lead_tokens.cache_read) == (12 * 150, 12 * 2300)
    assert usage.lead_tokens.cost_usd > 0
    assert "12 of 25" in str(admin_status_message(usage, False, False).blocks)
    # Every lead's request carries the same cached prefix; only the row differs.
    prefixes = {str(r.body["messages"][0]["content"][0]) for r in claude.requests}
    assert len(prefixes) == 1 and len(claude.requests) == 12


def test_a_list_asks_for_its_leads_at_once_without_a_thread_for_each(engine):
    """A 5,000-lead list at the whole model cap must fit in a worker's memory: its model calls
    wait on one event loop, not on a thread (stack and malloc arena) per model slot."""
    with FakeAnthropic() as claude:
        claude.default_reply = claude.opening_reply(first_token_delay=3.0)
        services = build_services(
            make_settings(database_url=str(engine.url), anthropic_base_url=claude.base_url),
            engine=engine,
        )
        keeper = LeaseKeeper(engine, 15).start()
        list_id = a_list(engine, 24)  # the free plan's allowance is 25
        ours = lambda: [t for t in threading.enumerate() if "process_request" not in t.name]  # noqa: E731
        before = len(ours())
        seen = [[t.name for t in ours()]]
        running = threading.Event()

        def count_threads() -> None:
            while not running.wait(0.05):
                seen.append([t.name for t in ours()])

        sampler = threading.Thread(target=count_threads)
        sampler.start()
        run_lead_list(services, keeper, list_id)
        running.set()
        sampler.join()
        keeper.stop()
    assert status_of(engine, list_id) == LeadListStatus.SUCCEEDED
    asked = sorted(r.received_at for r in claude.requests)
    # All 24 asked before the first answer could arrive (3 s), so all were in flight at once...
    assert len(asked) == 24 and asked[-1] - asked[0] < 3.0, [a - asked[0] for a in asked]
    # ...by the job's own thread, two for the database, and the sampler.
    most = max(seen, key=len)
    assert len(most) - before <= 3, most


def test_a_claimed_list_does_not_carry_its_file(engine):
    """The running list's row lives as long as the run: 5 MB of file in it would too."""
    list_id = a_list(engine, 3)
    claim = claim_lead_list(engine, list_id, owner="w1", lease_seconds=15, model_cap=4, share=0.5)
    assert claim.lead_list.id == list_id and claim.lead_list.source is None
    assert get_lead_list(engine, list_id, with_source=True).source == lead_csv(3)


def test_a_cancelled_list_stops_and_gives_back_the_leads_it_did_not_write(sqlite_engine):
    engine = sqlite_engine
    with FakeAnthropic() as claude:
        claude.default_reply = claude.opening_reply(tokens_per_second=80)
        settings = make_settings(
            database_url=str(engine.url),
            anthropic_base_url=claude.base_url,
            model_concurrency=2,
            lead_share=0.5,
        )
        services = build_services(settings, engine=engine)
        keeper = LeaseKeeper(engine, 15).start()
        list_id = a_list(engine, 20)
        runner = threading.Thread(target=run_lead_list, args=(services, keeper, list_id))
        runner.start()
        wait_until(lambda: count_written(engine, list_id) >= 2, timeout=30)
        assert request_cancel(engine, list_id)
        runner.join(timeout=30)
        keeper.stop()
    written = count_written(engine, list_id)
    assert status_of(engine, list_id) == LeadListStatus.CANCELLED
    assert 2 <= written < 20
    assert leads_standing(engine, POLICY, "T1")[1] == written  # the rest given back


def a_stopping_process(engine, claude, **settings):
    services = build_services(
        make_settings(
            database_url=str(engine.url),
            anthropic_base_url=claude.base_url,
            **{"model_concurrency": 4, "lead_share": 0.5, **settings},
        ),
        engine=engine,
    )
    return services, LeaseKeeper(engine, 15).start()


def test_a_list_handed_back_on_sigterm_is_resumed_with_no_lead_written_or_billed_twice(
    sqlite_engine,
):
    engine, count = sqlite_engine, 12
    with FakeAnthropic() as claude:
        claude.default_reply = claude.opening_reply(tokens_per_second=60)
        services, keeper = a_stopping_process(engine, claude)
        list_id = a_list(engine, count)
        runner = threading.Thread(target=run_lead_list, args=(services, keeper, list_id))
        runner.start()
        wait_until(lambda: count_written(engine, list_id) >= 2, timeout=30)
        # What `coldcopy worker` and `serve` do on SIGTERM once the grace period is over.
        assert drain(services, keeper, grace=0) == [LEAD_LIST + list_id]
        runner.join(timeout=30)
        keeper.stop()
        assert status_of(engine, list_id) == LeadListStatus.QUEUED  # handed back, not abandoned
        assert count_written(engine, list_id) < count
        services, keeper = a_stopping_process(engine, claude)  # another process
        run_lead_list(services, keeper, list_id)
        keeper.stop()
    assert status_of(engine, list_id) == LeadListStatus.SUCCEEDED
    assert sorted(saved_answers(engine, list_id)) == list(range(count))
    assert leads_standing(engine, POLICY, "T1")[1] == count
    assert len(claude.requests) == count  # the leads in flight were finished and kept
    with reading(engine) as conn:
        assert conn.execute(select(L.c.takeovers).where(L.c.id == list_id)).scalar_one() == 0


def test_a_list_still_waiting_on_the_model_when_its_process_stops_is_handed_back(engine):
    with FakeAnthropic() as claude:
        # Longer than a stopping process waits for a list to hand itself back.
        claude.default_reply = claude.opening_reply(first_token_delay=DRAIN_SECONDS + 4)
        services, keeper = a_stopping_process(engine, claude, lead_share=0.25)
        list_id = a_list(engine, 3)
        runner = threading.Thread(target=run_lead_list, args=(services, keeper, list_id))
        runner.start()
        wait_until(lambda: len(claude.requests) >= 1, timeout=30)
        drain(services, keeper, grace=0)
        keeper.stop_all()  # the worker's last step: whatever still runs stops saving
        assert status_of(engine, list_id) == LeadListStatus.QUEUED
        runner.join(timeout=30)
        keeper.stop()
        assert count_written(engine, list_id) == 0  # the answer that came late was not kept
        claude.default_reply = claude.opening_reply()
        services, keeper = a_stopping_process(engine, claude)  # another process, at once
        run_lead_list(services, keeper, list_id)
        keeper.stop()
    assert status_of(engine, list_id) == LeadListStatus.SUCCEEDED
    assert sorted(saved_answers(engine, list_id)) == [0, 1, 2]
    assert leads_standing(engine, POLICY, "T1")[1] == 3
    with reading(engine) as conn:
        assert conn.execute(select(L.c.takeovers).where(L.c.id == list_id)).scalar_one() == 0


def test_another_worker_resumes_a_list_whose_worker_was_killed(postgres_url, redis_url, tmp_path):
    engine = make_engine(postgres_url)
    upgrade(engine)
    count = 24
    with FakeAnthropic() as claude:
        # About one second per lead, two at once: the kill lands mid-list.
        claude.default_reply = claude.opening_reply(tokens_per_second=60)
        env = coldcopy_env(
            _NoSlack(),
            claude,
            postgres_url,
            REDIS_URL=redis_url,
            COLDCOPY_WORKER_METRICS_PORT="0",
            COLDCOPY_MODEL_CONCURRENCY="4",
            COLDCOPY_LEAD_SHARE="0.5",
        )
        procs = Processes(env, tmp_path)
        try:
            list_id = a_list(engine, count)
            JobQueue(make_settings(database_url=postgres_url), engine).defer(LEAD_LIST + list_id)
            worker = procs.start("worker", name="worker-1")
            wait_until(lambda: count_written(engine, list_id) >= 4, timeout=60)
            pids = children(worker.pid)
            worker.send_signal(signal.SIGKILL)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            worker.wait(timeout=10)
            before = count_written(engine, list_id)
            assert before < count
            procs.start("worker", name="worker-2")
            wait_until(lambda: status_of(engine, list_id) == "succeeded", timeout=90)
        finally:
            procs.stop_all()
    answers = saved_answers(engine, list_id)
    assert sorted(answers) == list(range(count))  # none lost
    assert leads_standing(engine, POLICY, "T1")[1] == count  # billed once each
    with reading(engine) as conn:
        assert conn.execute(select(L.c.takeovers).where(L.c.id == list_id)).scalar_one() == 1
    # Only the leads in flight at the kill were asked for twice.
    assert len(claude.requests) <= count + 2
    engine.dispose()


def test_a_restarted_serve_resumes_the_list_it_was_writing(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'coldcopy.db'}"
    engine = make_engine(database_url)
    upgrade(engine)
    count = 16
    with FakeAnthropic() as claude, FakeSlack() as slack:
        claude.default_reply = claude.opening_reply(tokens_per_second=60)
        env = coldcopy_env(
            slack, claude, database_url, COLDCOPY_MODEL_CONCURRENCY="4", COLDCOPY_LEAD_SHARE="0.5"
        )
        procs = Processes(env, tmp_path, slack)
        try:
            # A queued list: serve's start-up pass runs it, its progress in the thread.
            list_id = a_list(engine, count, channel_id="C1", thread_ts="1700000000.000100")
            procs.serve("serve-1")
            wait_until(lambda: count_written(engine, list_id) >= 3, timeout=60)
            server = procs.running[0]
            pids = children(server.pid)
            server.send_signal(signal.SIGKILL)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            server.wait(timeout=10)
            assert count_written(engine, list_id) < count
            procs.serve("serve-2")  # the same deployment, restarted
            wait_until(lambda: delivered(engine, list_id), timeout=60)
        finally:
            procs.stop_all()
    assert sorted(saved_answers(engine, list_id)) == list(range(count))
    assert leads_standing(engine, POLICY, "T1")[1] == count
    # The takeover went on in the same progress message, said so, and ended it in the result.
    posted = [c for c in slack.calls_to("chat.postMessage") if "Personalis" in str(c.params)]
    assert len(posted) == 1
    ts = posted[0].params["_ts"]
    updates = [c.params["text"] for c in slack.calls_to("chat.update") if c.params["ts"] == ts]
    assert any(text.startswith(RESUMED_NOTE) for text in updates)
    assert updates[-1].startswith(f"Personalised {count} leads")
    assert len([u for u in slack.uploads if u.channel_id]) == 1 + len(LEAD_FORMATS)
    engine.dispose()


def test_lead_files_reach_the_thread_once_when_the_process_dies_while_posting_them(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'coldcopy.db'}"
    engine = make_engine(database_url)
    upgrade(engine)
    count = 6
    with FakeAnthropic() as claude, FakeSlack() as slack:
        claude.default_reply = claude.opening_reply()
        env = coldcopy_env(
            slack, claude, database_url, COLDCOPY_MODEL_CONCURRENCY="4", COLDCOPY_LEAD_SHARE="0.5"
        )
        procs = Processes(env, tmp_path, slack)
        try:
            list_id = a_list(engine, count, channel_id="C1", thread_ts="1700000000.000100")
            # Every lead written and the list finished: the upload is where the kill lands.
            slack.hold("files.getUploadURLExternal")
            procs.serve("serve-1")
            slack.wait_held("files.getUploadURLExternal", 1, timeout=60)
            assert status_of(engine, list_id) == "succeeded"
            server = procs.running[0]
            pids = children(server.pid)
            server.send_signal(signal.SIGKILL)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            server.wait(timeout=10)
            slack.release("files.getUploadURLExternal")
            procs.serve("serve-2")  # the same deployment, restarted
            wait_until(lambda: delivered(engine, list_id), timeout=60)
        finally:
            procs.stop_all()
    shared = [u.filename for u in slack.uploads if u.channel_id]
    assert len(shared) == 1 + len(LEAD_FORMATS) == len(set(shared))  # every file, once
    assert leads_standing(engine, POLICY, "T1")[1] == count
    # One progress message, which ends in the result.
    posted = [c for c in slack.calls_to("chat.postMessage") if "Personalis" in str(c.params)]
    assert len(posted) == 1
    last = [
        c for c in slack.calls_to("chat.update") if c.params.get("ts") == posted[0].params["_ts"]
    ]
    assert f"Personalised {count} leads" in last[-1].params["text"]
    engine.dispose()


def delivered(engine, list_id: str) -> bool:
    with reading(engine) as conn:
        return (
            conn.execute(select(L.c.delivered_at).where(L.c.id == list_id)).scalar_one() is not None
        )


class _NoSlack:
    """A list started outside Slack posts nothing: no Slack server is needed."""

    base_url = "http://127.0.0.1:9/api/"
