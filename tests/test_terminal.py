"""`coldcopy write` and `coldcopy personalise` from a terminal with nothing but
ANTHROPIC_API_KEY set: no Slack, no database; bad input is one line and exit status 2."""

from __future__ import annotations

import csv
import io

from helpers import ROOT, coldcopy, readme_block

from testkit.fakes.anthropic import FakeAnthropic

BRIEF_FILE = str(ROOT / "examples" / "brief.toml")
LEADS_FILE = str(ROOT / "examples" / "leads.csv")


def model_env(claude) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": claude.base_url}


def test_write_prints_a_sequence_from_the_sample_brief(tmp_path):
    with FakeAnthropic() as claude:
        claude.enqueue_sequence()
        done = coldcopy("write", "--brief", BRIEF_FILE, cwd=tmp_path, **model_env(claude))
    assert done.returncode == 0, done.stderr
    assert [f"--- Email {n} " in done.stdout for n in range(1, 8)] == [True] * 7
    assert not list(tmp_path.iterdir())  # no database file, nothing written


def test_personalise_writes_the_lead_csv_of_the_sample_list(tmp_path):
    out = tmp_path / "personalised.csv"
    with FakeAnthropic() as claude:
        claude.enqueue_sequence()
        claude.default_reply = claude.opening_reply()
        done = coldcopy(
            "personalise",
            LEADS_FILE,
            "--brief",
            BRIEF_FILE,
            "--out",
            str(out),
            cwd=tmp_path,
            **model_env(claude),
        )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows and all(r["personalization"] for r in rows)
    assert {"subject_a", "needs_review", "Email Address"} <= set(rows[0])
    assert "Row 4: no email address." in done.stderr  # row problems are said, not dropped


def test_bad_input_is_one_line_and_exit_status_2(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    cases = [
        (("write", "--brief", "missing.toml"), "missing.toml: no such file."),
        (("personalise", "nope.csv", "--brief", BRIEF_FILE), "nope.csv: no such file."),
        (("personalise", "empty.csv", "--brief", BRIEF_FILE), "empty.csv: This file has no rows"),
    ]
    for args, message in cases:
        done = coldcopy(*args, cwd=tmp_path, ANTHROPIC_API_KEY="sk-ant-test")
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    no_key = coldcopy("write", "--brief", BRIEF_FILE, cwd=tmp_path)
    assert no_key.returncode == 2 and "ANTHROPIC_API_KEY" in no_key.stderr


def test_the_readme_s_commands_run_as_written(tmp_path):
    with FakeAnthropic() as claude:
        claude.enqueue_sequence()
        claude.enqueue_sequence()
        claude.default_reply = claude.opening_reply()
        for block in ("write-command", "personalise-command"):
            args = readme_block(block).split()[1:]
            args = [str(ROOT / a) if a.startswith("examples/") else a for a in args]
            done = coldcopy(*args, cwd=tmp_path, **model_env(claude))
            assert done.returncode == 0, done.stderr
    assert (tmp_path / "leads-personalised.csv").read_text().startswith("Email Address,")
