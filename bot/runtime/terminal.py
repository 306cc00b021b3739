"""`coldcopy write` and `coldcopy personalise`: the same writer as the Slack app, from a terminal,
with nothing but ANTHROPIC_API_KEY set (no Slack, no database). A newcomer's first look at the
copy, and a path for automation: the lead CSV goes to a file or stdout, everything else to
stderr. Bad input is one line naming the file and the problem, exit status 2."""

from __future__ import annotations

import argparse
import asyncio
import sys
from decimal import Decimal
from pathlib import Path

from bot.core.settings import Settings
from bot.writing.brief import Brief
from bot.writing.brief_file import BriefFileError, load_brief_file
from bot.writing.events import SequenceEmail, WriterError, WriterSummary
from bot.writing.lead_files import lead_csv
from bot.writing.lead_list import MAX_BYTES, Lead, LeadList, read_lead_list
from bot.writing.personal_prompt import ListPrefix, PersonalOpening, list_prefix
from bot.writing.writer import Writer

EXIT_INPUT = 2
EXIT_MODEL = 1
# Leads asked for at once from a terminal: fast, and far inside any account's rate limit.
LEADS_AT_ONCE = 8


class BadInput(Exception):
    """One line saying which input is wrong and how."""


def run_write(settings: Settings, args: argparse.Namespace) -> int:
    return _guarded(lambda: _write(settings, args))


def run_personalise(settings: Settings, args: argparse.Namespace) -> int:
    return _guarded(lambda: _personalise(settings, args))


def _guarded(command) -> int:
    try:
        return command()
    except BadInput as exc:
        print(f"coldcopy: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except WriterError as exc:
        print(f"coldcopy: the model could not write this: {exc.detail}", file=sys.stderr)
        return EXIT_MODEL


def _brief(path: str) -> Brief:
    try:
        return load_brief_file(path)
    except BriefFileError as exc:
        raise BadInput(f"{exc.path}: " + "; ".join(exc.problems)) from None


def _sequence(writer: Writer, brief: Brief) -> tuple[list[SequenceEmail], WriterSummary | None]:
    emails: list[SequenceEmail] = []
    summary = None
    for item in writer.write_sequence(brief):
        if isinstance(item, SequenceEmail):
            emails.append(item)
        elif isinstance(item, WriterSummary):
            summary = item
    return emails, summary


def _write(settings: Settings, args: argparse.Namespace) -> int:
    brief = _brief(args.brief)
    with Writer.from_settings(settings) as writer:
        emails, summary = _sequence(writer, brief)
    for email in emails:
        print(f"--- Email {email.step} (day {email.day})")
        print(f"Subject A: {email.subject_a}\nSubject B: {email.subject_b}\n\n{email.body}\n")
    if summary is not None:
        tokens = summary.tokens
        print(
            f"{summary.model}: {tokens.input + tokens.output} tokens, ${tokens.cost_usd:.4f}",
            file=sys.stderr,
        )
    return 0


def _leads(path: str) -> LeadList:
    file = Path(path)
    try:
        if file.stat().st_size > MAX_BYTES:
            raise BadInput(f"{path}: larger than {MAX_BYTES // 1024 // 1024} MB; split it.")
        data = file.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file.") from None
    except OSError as exc:
        raise BadInput(f"{path}: can't be read ({exc.strerror}).") from None
    leads = read_lead_list(data)
    if not isinstance(leads, LeadList):
        raise BadInput(f"{path}: {leads.message}")
    if not leads.leads:
        raise BadInput(f"{path}: no row has a valid email address.")
    return leads


async def _openings(
    writer: Writer, prefix: ListPrefix, leads: LeadList
) -> tuple[dict[str, PersonalOpening], Decimal]:
    """Every lead's opening, LEADS_AT_ONCE at a time on this event loop, progress on stderr.
    The first lead the model can't be reached for stops the rest and is raised."""
    answers: dict[str, PersonalOpening] = {}
    cost = Decimal(0)
    done = 0
    at_once = asyncio.Semaphore(LEADS_AT_ONCE)
    total = len(leads.leads)

    async def one(lead: Lead) -> None:
        nonlocal cost, done
        async with at_once:
            written = await openings.write(prefix, lead)
        if written.opening is not None:
            answers[lead.email] = written.opening
        cost += written.tokens.cost_usd
        done += 1
        print(f"\rPersonalised {done} of {total}", end="", file=sys.stderr)

    async with writer.openings() as openings:
        try:
            async with asyncio.TaskGroup() as group:
                for lead in leads.leads:
                    group.create_task(one(lead))
        except ExceptionGroup as failed:
            raise next(
                (e for e in failed.exceptions if isinstance(e, WriterError)), failed
            ) from None
    return answers, cost


def _personalise(settings: Settings, args: argparse.Namespace) -> int:
    leads = _leads(args.leads)  # the cheap checks first: no model call for a bad file
    brief = _brief(args.brief)
    for issue in leads.issues:
        print(f"{args.leads}: {issue.message}", file=sys.stderr)
    with Writer.from_settings(settings) as writer:
        emails, _ = _sequence(writer, brief)
        prefix = list_prefix(brief, [email.as_dict() for email in emails])
        answers, cost = asyncio.run(_openings(writer, prefix, leads))
    print(f"\nModel cost: ${cost:.4f}", file=sys.stderr)
    file = lead_csv(leads, answers, brief.company)
    if args.out:
        Path(args.out).write_text(file.content, encoding="utf-8")
        print(f"Wrote {len(leads.leads)} leads to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(file.content)
    return 0
