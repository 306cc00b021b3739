"""The code reads one way: ruff's lint rules and formatter, as configured in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATHS = ["bot", "storage", "tests", "bench"]


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, *PATHS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ruff_finds_nothing_to_lint():
    result = ruff("check", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_code_is_formatted():
    result = ruff("format", "--check", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


SLACK_PACKAGES = ("slack_sdk", "slack_bolt")
# The domain does not know Slack: only these folders may import it.
SLACK_FREE = ["bot/writing", "bot/domain", "storage"]
# The one exception: the schema keeps Slack's installation tables exactly as slack_sdk
# defines them (its SQLAlchemy table builders), so the migrations hold them too.
SCHEMA_ONLY = {
    "slack_sdk.oauth.installation_store.sqlalchemy",
    "slack_sdk.oauth.state_store.sqlalchemy",
}


def imported_modules(path: Path) -> set[str]:
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_a_files_folder_tells_whether_it_may_import_slack():
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for folder in SLACK_FREE
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name in imported_modules(path)
        if (name.split(".")[0] in SLACK_PACKAGES or name.startswith("bot.slack"))
        and not (path.name == "models.py" and name in SCHEMA_ONLY)
    ]
    assert offenders == []


def test_no_module_is_named_for_nothing_in_particular():
    vague = {"utils.py", "helpers.py", "manager.py", "misc.py", "common.py"}
    found = [str(p.relative_to(ROOT)) for p in (ROOT / "bot").rglob("*.py") if p.name in vague]
    found += [str(p.relative_to(ROOT)) for p in (ROOT / "storage").rglob("*.py") if p.name in vague]
    assert found == []
