"""The README's set-up commands are the ones CI proves: exactly two (run the app, run the
tests), the test command word for word the one .ci/run runs, and the unit layer's command named
beside it; every slash subcommand and the Home tab are documented."""

from __future__ import annotations

from helpers import README, ROOT, readme_block

from bot.slack.listeners.commands import SUBCOMMANDS


def test_the_readme_has_exactly_two_setup_commands():
    assert README.count("```\npython3 -m venv") == 2
    run, test = readme_block("run-command"), readme_block("test-command")
    assert run.startswith("python3 -m venv .venv && .venv/bin/pip install -e . && ")
    assert test.startswith("python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && ")
    ci = (ROOT / ".ci/run").read_text()
    assert f'TEST_COMMAND="{test}"' in ci  # the command CI checks against the README
    assert test in ci.replace(" </dev/null", "")  # ...and runs, word for word


def test_the_readme_names_the_unit_layers_command():
    assert readme_block("unit-command") == ".venv/bin/pytest -q -n 0 tests/unit"


def test_every_slash_subcommand_and_the_home_tab_are_documented():
    for name in {*(name for name in SUBCOMMANDS if name), "help"}:
        assert f"`/coldcopy {name}`" in README, f"README does not document /coldcopy {name}"
    assert (
        "### The Home tab" in README
        and "`/coldcopy settings`" in README.split("## Contract changes")[1]
    )
