"""Benchmark of a lead list: 1,000 leads through the lead-list job against the fake model (80
tokens/s, 0.3 s to the first token) at the default model cap, on PostgreSQL.

Figures: the list's wall time against the ideal (waves of the model cap times one lead's time,
and waves of the list's own share of the cap), and a lone sequence started 3 s into the list:
its time from start (claiming a model slot like a job does) to its first email, against the
same sequence run alone.

    python -m bench.leads_bench [--leads 1000]
    python -m bench.leads_bench --memory

`--memory`: a full-size list (5,000 rows, just under 5 MB) through the same job in a fresh
process with the database pool `serve` runs (the embedded mode: the larger one), the fake
model at the same speed, to its five lead files shared in the sequence's thread (a fake Slack in
the parent process): the rise of that process's peak resident set (VmHWM) over the process
idle with the list stored and ready. Target: at most 64 MiB. About two minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.services import fresh_postgres
from bot.core.settings import Settings
from bot.flows.lead_job import run_lead_list
from bot.flows.leases import LeaseKeeper
from bot.runtime.serving import web_pool_size
from bot.runtime.wiring import build_services
from bot.writing.brief import Brief
from bot.writing.events import SequenceEmail
from bot.writing.lead_list import read_lead_list
from bot.writing.personal_prompt import list_prefix
from bot.writing.writer import Writer
from storage.db import make_engine
from storage.generations import Claimed, claim_generation
from storage.lead_lists import LeadPolicy, create_lead_list
from storage.lead_results import count_written
from storage.ledger import Delivery, commit_generation, reserve_generation
from storage.quota import QuotaPolicy
from testkit.briefs import SAMPLE_BRIEF
from testkit.fakes.anthropic import FakeAnthropic, sample_sequence
from testkit.fakes.slack import FakeSlack
from testkit.lead_files import lead_list

TOKENS_PER_SECOND = 80.0
FIRST_TOKEN_S = 0.3
LEADS = 1000
SEQUENCE_AFTER_S = 3.0
TARGET_WALL_RATIO = 1.3
TARGET_FIRST_EMAIL_RATIO = 1.5
SLOT_WAIT_S = 1.0
OPENING = (
    "Opening a second cross-dock in Rotterdam in March usually means the order desk suddenly "
    "handles twice the volume with the same team. I imagine re-keying each order into three "
    "systems got noticeably heavier since then."
)  # as bot/flows/generation.py: a generation waiting for a model slot


def lead_csv(count: int) -> bytes:
    rows = ["Email,First Name,Company,Notes"]
    rows += [f"p{n}@example{n}.com,Pat{n},Company {n},Opened an office" for n in range(count)]
    return ("\n".join(rows) + "\n").encode()


def _settings(url: str, claude: FakeAnthropic) -> Settings:
    return Settings(
        _env_file=None,
        slack_bot_token="xoxb-bench",
        anthropic_api_key="sk-ant-bench",
        anthropic_base_url=claude.base_url,
        database_url=url,
    )


def _first_email(engine, writer: Writer, team: str, cap: int) -> float:
    """From the start of a new sequence (claim a model slot, then write) to its first email."""
    started = time.monotonic()
    reserved = reserve_generation(
        engine,
        QuotaPolicy(free=1000, pro=1000),
        team_id=team,
        user_id="U1",
        channel_id="C1",
        idempotency_key=f"bench-{team}-{started}",
        brief=dict(SAMPLE_BRIEF),
    )
    while not isinstance(
        claim_generation(
            engine, reserved.generation_id, owner="bench", lease_seconds=30, running_cap=cap
        ),
        Claimed,
    ):
        time.sleep(SLOT_WAIT_S)
    for item in writer.write_sequence(Brief(**SAMPLE_BRIEF)):
        if isinstance(item, SequenceEmail):
            return time.monotonic() - started
    raise RuntimeError("no email")


def _sequence_writer(seq_fake: FakeAnthropic) -> Writer:
    seq_fake.default_reply = None
    seq_fake.enqueue_sequence(tokens_per_second=TOKENS_PER_SECOND, first_token_delay=FIRST_TOKEN_S)
    return Writer(api_key="sk-ant-bench", base_url=seq_fake.base_url, timeout=120)


def measure(leads: int = LEADS, sequence_after: float = SEQUENCE_AFTER_S) -> dict:
    with fresh_postgres("coldcopy_leads") as url, FakeAnthropic() as claude, FakeAnthropic() as seq:
        # About 80 output tokens, as a real opening and subject take.
        claude.default_reply = claude.opening_reply(
            opening=OPENING,
            subject_a="Rotterdam and the second cross-dock",
            tokens_per_second=TOKENS_PER_SECOND,
            first_token_delay=FIRST_TOKEN_S,
        )
        settings = _settings(url, claude)
        cap = settings.model_concurrency
        engine = make_engine(url, pool_size=cap + 8)
        services = build_services(settings, engine=engine)
        # One lead alone: the unit of the ideal.
        parsed = read_lead_list(lead_csv(1))
        emails = [{"step": n, **e} for n, e in enumerate(sample_sequence(), 1)]
        prefix = list_prefix(Brief(**SAMPLE_BRIEF), emails)
        t0 = time.monotonic()
        _write_one(services.writer, prefix, parsed.leads[0])
        lead_s = time.monotonic() - t0
        # A lone sequence's first email, with no list running.
        with _sequence_writer(seq) as writer:
            lone = _first_email(engine, writer, "TLONE", cap)
        # The list.
        made = _list_ready(engine, settings, emails, lead_csv(leads), leads)
        keeper = LeaseKeeper(engine, settings.lease_seconds).start()
        started = time.monotonic()
        ended: list[float] = []

        def run() -> None:
            run_lead_list(services, keeper, made.list_id)
            ended.append(time.monotonic())

        runner = threading.Thread(target=run)
        runner.start()
        time.sleep(sequence_after)
        with _sequence_writer(seq) as writer:
            during = _first_email(engine, writer, "TDURING", cap)
        overlapped = not ended  # the sequence's first email came while the list ran
        runner.join()
        wall = ended[0] - started
        keeper.stop()
        written = count_written(engine, made.list_id)
        services.close()
    share = max(1, int(cap * settings.lead_share))
    ideal = math.ceil(leads / cap) * lead_s
    ideal_share = math.ceil(leads / share) * lead_s
    return {
        "leads": leads,
        "written": written,
        "model_cap": cap,
        "list_slots": share,
        "lead_s": lead_s,
        "wall_s": wall,
        "ideal_s": ideal,
        "ideal_share_s": ideal_share,
        "wall_ratio": wall / ideal,
        "wall_ratio_share": wall / ideal_share,
        "lone_first_email_s": lone,
        "during_first_email_s": during,
        "first_email_ratio": during / lone,
        "sequence_during_list": overlapped,
        "meets_wall": wall / ideal <= TARGET_WALL_RATIO,
        "meets_first_email": during / lone <= TARGET_FIRST_EMAIL_RATIO,
    }


def print_report(f: dict) -> None:
    print(
        f"{f['leads']} leads ({f['written']} written), model cap {f['model_cap']}, "
        f"list slots {f['list_slots']}, one lead {f['lead_s']:.2f} s"
    )
    print(f"{'':32} {'measured':>10} {'ideal':>10} {'ratio':>7}")
    print(
        f"{'list wall time (cap)':32} {f['wall_s']:>9.1f}s {f['ideal_s']:>9.1f}s "
        f"{f['wall_ratio']:>6.2f}x  (target <= {TARGET_WALL_RATIO}x)"
    )
    print(
        f"{'list wall time (list share)':32} {f['wall_s']:>9.1f}s {f['ideal_share_s']:>9.1f}s "
        f"{f['wall_ratio_share']:>6.2f}x"
    )
    print(
        f"{'first email, during vs lone':32} {f['during_first_email_s']:>9.2f}s "
        f"{f['lone_first_email_s']:>9.2f}s {f['first_email_ratio']:>6.2f}x  "
        f"(target <= {TARGET_FIRST_EMAIL_RATIO}x)"
        + ("" if f["sequence_during_list"] else "  [the list had ended: run more leads]")
    )


TARGET_MEMORY_MIB = 64
# The sequence's thread the memory run's list delivers its lead files to.
CHANNEL = "C1"
THREAD_TS = "1700000000.000100"


def measure_memory(rows: int | None = None) -> dict:
    """A full-size list's job in a fresh process: its peak RSS rise over that idle process,
    from the first lead to its five lead files shared in the sequence's thread."""
    with (
        fresh_postgres("coldcopy_leads_memory") as url,
        FakeAnthropic() as claude,
        FakeSlack(team_id="T1") as slack,
    ):
        claude.default_reply = claude.opening_reply(
            opening=OPENING,
            subject_a="Rotterdam and the second cross-dock",
            tokens_per_second=TOKENS_PER_SECOND,
            first_token_delay=FIRST_TOKEN_S,
        )
        slack.add_channel(CHANNEL)
        child = subprocess.run(
            [sys.executable, "-m", "bench.leads_bench", "--memory-child", url, claude.base_url]
            + [slack.base_url]
            + ([f"--rows={rows}"] if rows else []),
            capture_output=True,
            text=True,
            timeout=900,
        )
        if child.returncode != 0:
            raise RuntimeError(f"the measured process failed: {child.stderr[-2000:]}")
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        shared = [u for u in slack.uploads if u.thread_ts == THREAD_TS]
        mib = sum(len(u.data) for u in shared) / 2**20
        return {**figures, "files": len(shared), "file_mib": mib}


def _memory_child(url: str, model_url: str, slack_url: str, rows: int | None = None) -> None:
    settings = Settings(
        _env_file=None,
        slack_bot_token="xoxb-bench",
        slack_api_url=slack_url,
        anthropic_api_key="sk-ant-bench",
        anthropic_base_url=model_url,
        database_url=url,
    )
    engine = make_engine(url, pool_size=web_pool_size(settings))
    services = build_services(settings, engine=engine)
    source = lead_list("utf-8")
    if rows:  # the first `rows` leads of the full-size file
        source = b"\r\n".join(source.split(b"\r\n")[: rows + 1]) + b"\r\n"
    rows = len(read_lead_list(source).leads)
    size = len(source)
    emails = [{"step": n, **e} for n, e in enumerate(sample_sequence(), 1)]
    made = _list_ready(
        engine, settings, emails, source, rows, channel_id=CHANNEL, thread_ts=THREAD_TS
    )
    del source
    keeper = LeaseKeeper(engine, settings.lease_seconds).start()
    # One lead first, so the model client's code is loaded in the idle figure.
    _write_one(services.writer, list_prefix(Brief(**SAMPLE_BRIEF), emails), _one_lead())
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM back to the current RSS
    idle = _vm("VmHWM")
    started = time.monotonic()
    run_lead_list(services, keeper, made.list_id)
    seconds = time.monotonic() - started
    peak = _vm("VmHWM")
    written = count_written(engine, made.list_id)
    keeper.stop()
    services.close()
    print(
        json.dumps(
            {
                "rows": rows,
                "written": written,
                "bytes": size,
                "idle_mib": idle / 1024,
                "rise_mib": (peak - idle) / 1024,
                "seconds": seconds,
            }
        )
    )


def _list_ready(engine, settings: Settings, emails: list[dict], source: bytes, rows: int, **where):
    """A finished sample sequence and a lead list of `source` for it, ready to run."""
    gen = reserve_generation(
        engine,
        QuotaPolicy(free=10, pro=10),
        team_id="T1",
        user_id="U1",
        channel_id="C1",
        idempotency_key="bench-list-gen",
        brief=dict(SAMPLE_BRIEF),
    )
    commit_generation(engine, gen.generation_id, Delivery(emails, settings.model))
    return create_lead_list(
        engine,
        LeadPolicy(free=rows, pro=rows),
        team_id="T1",
        user_id="U1",
        generation_id=gen.generation_id,
        leads=rows,
        source=source,
        filename="bench.csv",
        idempotency_key="bench-list",
        **where,
    )


def _write_one(writer: Writer, prefix, lead) -> None:
    async def one() -> None:
        async with writer.openings() as openings:
            await openings.write(prefix, lead)

    asyncio.run(one())


def _one_lead():
    return read_lead_list(lead_csv(1)).leads[0]


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def print_memory(m: dict) -> None:
    print(
        f"a {m['bytes'] / 2**20:.1f} MiB list, {m['rows']:,} rows ({m['written']:,} written) in "
        f"{m['seconds']:.0f} s, {m['files']} lead files ({m['file_mib']:.1f} MiB) shared: "
        f"peak RSS {m['rise_mib']:.1f} MiB above the idle process "
        f"({m['idle_mib']:.0f} MiB)  (target <= {TARGET_MEMORY_MIB} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=LEADS)
    parser.add_argument("--sequence-after", type=float, default=SEQUENCE_AFTER_S)
    parser.add_argument("--memory", action="store_true", help="a full-size list's memory")
    parser.add_argument("--rows", type=int, help="with --memory: only this many rows")
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        _memory_child(*args.memory_child, rows=args.rows)
    elif args.memory:
        print_memory(measure_memory(args.rows))
    else:
        print_report(measure(args.leads, args.sequence_after))


if __name__ == "__main__":
    main()
