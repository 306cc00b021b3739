"""The lead-list modules are plain Python the Slack flow and the job call: they import nothing
from Slack, the runtime or storage, and each stays one idea of a readable size."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = [
    "bot/writing/lead_columns.py",
    "bot/writing/lead_list.py",
    "bot/writing/uploaded_csv.py",
    "bot/writing/lead_files.py",
    "bot/writing/personal_rules.py",
    "bot/writing/personal_prompt.py",
    "bot/writing/personal_answer.py",
    "bot/writing/brief_file.py",
]
FORBIDDEN = ("slack_sdk", "slack_bolt", "bot.slack", "bot.runtime", "storage")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", MODULES)
def test_a_lead_module_imports_no_slack_runtime_or_storage(module):
    bad = [n for n in imported(ROOT / module) if n == "storage" or n.startswith(FORBIDDEN)]
    assert bad == []


@pytest.mark.parametrize("module", MODULES)
def test_a_lead_module_stays_short(module):
    assert len((ROOT / module).read_text().splitlines()) <= 300
