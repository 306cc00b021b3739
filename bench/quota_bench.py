"""Benchmark of the quota ledger under contention: 32 threads calling `reserve_generation` at
once, on one workspace and spread over 100 workspaces, on PostgreSQL and on SQLite; then a check
that not one unit was granted beyond the limit.

    python -m bench.quota_bench [--per-thread N | --full] [--threads 32]

The limit is set to half the attempts each workspace receives, so half the reservations are
refused and the race for the last units really happens. Afterwards, for every workspace,
`used` must equal the limit exactly, as must the number of generation rows holding a
reservation and the number of `Reserved` answers.

The full size is 32 threads x 10,000 reservations per case (320,000); on a small machine that
does not fit the 5-minute budget for four cases, so the default is smaller (--per-thread);
the output says which was measured. PostgreSQL gets a fresh database, dropped afterwards;
SQLite a file in a temporary directory, migrated with storage.migrate.upgrade.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import func, select

from bench.services import fresh_postgres
from storage.db import make_engine, reading
from storage.ledger import DuplicateRequest, Reserved, reserve_generation
from storage.migrate import upgrade
from storage.models import Generation, QuotaState, Workspace
from storage.quota import QuotaExhausted, QuotaPolicy
from testkit.briefs import SAMPLE_BRIEF

THREADS = 32
FULL_PER_THREAD = 10_000
# What fits four cases in well under five minutes on 2 cores (measured: see bench/README.md).
DEFAULT_PER_THREAD = 750
SPREAD_WORKSPACES = 100
BRIEF = {**SAMPLE_BRIEF, "tone": "Professional"}
G = Generation.__table__
W = Workspace.__table__


@contextmanager
def database(backend: str):
    if backend == "postgresql":
        with fresh_postgres("coldcopy_bench_quota") as url:
            yield url
    else:
        with tempfile.TemporaryDirectory(prefix="coldcopy-quota-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'quota.db'}"
            engine = make_engine(url, pool_size=1)
            upgrade(engine)
            engine.dispose()
            yield url


def run_case(backend: str, workspaces: int, threads: int, per_thread: int) -> dict:
    """`threads` x `per_thread` reservations over `workspaces` workspaces, then the check."""
    attempts = threads * per_thread
    per_workspace = attempts // workspaces
    if per_workspace < 2:
        raise ValueError(
            f"{attempts} reservations over {workspaces} workspaces leave fewer than 2 each: "
            "raise --per-thread so some are granted and some refused"
        )
    limit = per_workspace // 2
    policy = QuotaPolicy(free=limit, pro=limit)
    run = uuid.uuid4().hex[:6]
    teams = [f"T{run}{w:03d}" for w in range(workspaces)]
    answers: list[Counter] = [Counter() for _ in range(threads)]
    errors: list[BaseException] = []
    with database(backend) as url:
        engine = make_engine(url, pool_size=threads)
        try:
            start = threading.Barrier(threads + 1)

            def reserve(t: int) -> None:
                tally = answers[t]
                start.wait()
                try:
                    for i in range(per_thread):
                        n = t * per_thread + i
                        result = reserve_generation(
                            engine,
                            policy,
                            team_id=teams[n % workspaces],
                            user_id=f"U{t:02d}",
                            channel_id="C1",
                            idempotency_key=f"bench:{run}:{n}",
                            brief=BRIEF,
                            model="claude-sonnet-5-5",
                        )
                        tally[type(result).__name__] += 1
                except BaseException as exc:  # reported below; the other threads go on
                    errors.append(exc)

            workers = [threading.Thread(target=reserve, args=(t,)) for t in range(threads)]
            for worker in workers:
                worker.start()
            start.wait()
            started, cpu = time.perf_counter(), time.process_time()
            for worker in workers:
                worker.join()
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu
            verdict = _check(engine, teams, limit)
        finally:
            engine.dispose()
    total = sum(answers, Counter())
    granted = total[Reserved.__name__]
    return {
        "backend": backend,
        "workspaces": workspaces,
        "threads": threads,
        "per_thread": per_thread,
        "attempts": attempts,
        "limit_per_workspace": limit,
        "reserved": granted,
        "refused": total[QuotaExhausted.__name__],
        "duplicates": total[DuplicateRequest.__name__],
        "errors": len(errors),
        "first_error": repr(errors[0]) if errors else "",
        "seconds": wall,
        "per_second": attempts / wall,
        # This process's CPU (all threads) per wall second: near 1.0 means the GIL, i.e.
        # Python building and running statements, not the database, sets the pace.
        "python_cpu_per_wall": cpu / wall,
        **verdict,
        "no_over_grant": (
            not errors
            and verdict["workspaces_exact"] == workspaces
            and verdict["rows_reserved"] == limit * workspaces
            and granted == limit * workspaces
        ),
    }


def _check(engine, teams: list[str], limit: int) -> dict:
    """Each workspace's `used` and its count of reserved generation rows, against the limit."""
    with reading(engine) as conn:
        used = dict(conn.execute(select(W.c.team_id, W.c.used)).all())
        rows = dict(
            conn.execute(
                select(G.c.team_id, func.count())
                .where(G.c.quota_state == QuotaState.RESERVED)
                .group_by(G.c.team_id)
            ).all()
        )
    exact = sum(1 for team in teams if used.get(team) == limit and rows.get(team) == limit)
    return {
        "workspaces_exact": exact,
        "max_used": max(used.values(), default=0),
        "rows_reserved": sum(rows.values()),
    }


def measure(
    *, per_thread: int = DEFAULT_PER_THREAD, threads: int = THREADS, verbose: bool = True
) -> dict:
    cases = {}
    for backend in ("postgresql", "sqlite"):
        for workspaces in (1, SPREAD_WORKSPACES):
            result = run_case(backend, workspaces, threads, per_thread)
            key = f"{backend}.{'one' if workspaces == 1 else 'spread'}"
            cases[key] = result
            if verbose:
                _print_case(result)
    return {
        "cases": cases,
        "per_thread": per_thread,
        "threads": threads,
        "scaled_down": per_thread < FULL_PER_THREAD,
    }


def _print_case(r: dict) -> None:
    print(
        f"{r['backend']:<11}{r['workspaces']:>4} ws  {r['attempts']:>7} attempts in "
        f"{r['seconds']:6.1f} s = {r['per_second']:7.0f}/s  (Python CPU "
        f"{r['python_cpu_per_wall']:.2f} core)  reserved {r['reserved']} "
        f"(limit {r['limit_per_workspace']} x {r['workspaces']}), refused {r['refused']}, "
        f"errors {r['errors']}  max used {r['max_used']}  "
        f"{'no over-grant' if r['no_over_grant'] else 'OVER-GRANT OR ERROR ' + r['first_error']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--per-thread", type=int, default=DEFAULT_PER_THREAD)
    size.add_argument(
        "--full", action="store_true", help=f"{FULL_PER_THREAD:,} per thread (slow here)"
    )
    parser.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args(argv)
    per_thread = FULL_PER_THREAD if args.full else args.per_thread
    if per_thread < FULL_PER_THREAD:
        print(
            f"scaled down: {args.threads} threads x {per_thread:,} reservations per case "
            f"(the full run is {args.threads} x {FULL_PER_THREAD:,}; --full)"
        )
    started = time.monotonic()
    result = measure(per_thread=per_thread, threads=args.threads)
    print(f"quota benchmark took {time.monotonic() - started:.0f} s")
    return 0 if all(c["no_over_grant"] for c in result["cases"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
