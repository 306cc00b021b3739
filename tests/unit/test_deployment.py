"""The container files and the runbook stay true to the code.

Docker cannot run in CI, and a build that references files that do not exist ships
anyway. So these checks read Dockerfile, compose.yaml and docs/RUNBOOK.md and hold
every file, command, setting, metric and route they name against the repository and the code.
"""

from __future__ import annotations

import fnmatch
import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit
from wsgiref.util import setup_testing_defaults

import pytest
import yaml
from helpers import make_settings

from bot.core.metrics import REGISTRY
from bot.core.settings import PURPOSE
from bot.runtime.cli import _parser
from bot.runtime.wiring import build_services
from bot.runtime.wsgi import ColdCopyWSGI
from bot.slack.app import INSTALL_PATH, REDIRECT_PATH

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "compose.yaml"
RUNBOOK = ROOT / "docs" / "RUNBOOK.md"
MANIFEST = ROOT / "manifest.yml"

SETTING = re.compile(
    r"\b(?:(?:SLACK|ANTHROPIC|COLDCOPY|STRIPE)_[A-Z0-9_]+|DATABASE_URL|REDIS_URL)\b"
)
METRIC = re.compile(r"\bcoldcopy_[a-z0-9_]+")
# A path of ours: the first segment names one of the app's route families. File paths such
# as `storage/migrations/` are preceded by a letter and do not count.
ROUTE = re.compile(r"(?<![A-Za-z_.-])/(?:healthz|readyz|metrics|slack|stripe|billing)\b[\w/]*")
METHOD_ROUTE = re.compile(r"\b(?:GET|POST|PUT|PATCH|DELETE)\s+(/[\w/]*)")
# `coldcopy <subcommand> ...` as a shell word (alone, or after a directory such as
# `.venv/bin/`), but not the Slack slash command `/coldcopy`.
CLI_CALL = re.compile(r"(?:(?<=\w/)|(?<![^\s\"'(]))coldcopy[ \t]+([a-z][^\n|;&>#`\"')]*)")


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    joined = re.sub(r"\\[ \t]*\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def exec_form(arguments: str) -> list[str]:
    return json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def markdown_code(text: str) -> list[str]:
    """The fenced blocks and inline code spans of a Markdown text."""
    fence = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
    blocks = fence.findall(text)
    prose = fence.sub("", text)
    return blocks + re.findall(r"`([^`\n]+)`", prose)


def routes_named(text: str) -> set[str]:
    found = set(ROUTE.findall(text)) | set(METHOD_ROUTE.findall(text))
    return {route.rstrip("/") or "/" for route in found}


def assert_cli_accepts(argv: list[str], where: str) -> None:
    try:
        _parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where} runs `coldcopy {shlex.join(argv)}`, which the CLI rejects")


# --- the image -----------------------------------------------------------------------------


def copy_sources() -> list[str]:
    sources = []
    for keyword, arguments in dockerfile():
        if keyword not in ("COPY", "ADD"):
            continue
        words = exec_form(arguments)
        flags = [w for w in words if w.startswith("--")]
        if any(flag.startswith("--from") for flag in flags):
            continue  # from another build stage, not from the repository
        paths = [w for w in words if not w.startswith("--")]
        sources.extend(paths[:-1])
    return sources


def test_every_file_the_dockerfile_copies_exists_and_is_in_the_build_context():
    sources = copy_sources()
    assert sources, "the Dockerfile copies nothing from the repository"
    ignored = [
        line.strip().strip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(p.startswith("!") for p in ignored), "re-includes are not checked here"
    for source in sources:
        assert list(ROOT.glob(source.rstrip("/"))), f"Dockerfile copies {source}, not in the repo"
        parts = Path(source.rstrip("/")).parts
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            hits = [p for p in ignored if fnmatch.fnmatch(prefix, p)]
            assert not hits, f"Dockerfile copies {source} but .dockerignore drops it ({hits})"


def test_the_build_context_leaves_secrets_and_local_state_out():
    ignored = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    for path in (".env", ".venv", ".git", "coldcopy.db", "coldcopy.db-wal", ".pytest_cache"):
        assert any(fnmatch.fnmatch(path, p) for p in ignored if p), f"{path} enters the image"


def test_the_image_installs_the_package_without_dev_extras():
    installs = [a for k, a in dockerfile() if k == "RUN" and "pip install" in a]
    assert installs, "the Dockerfile never installs the package"
    for command in installs:
        assert "[dev]" not in command and " -e " not in command, command


def test_the_image_runs_as_a_user_and_serves_on_the_port_it_checks():
    instructions = dockerfile()
    users = [a for k, a in instructions if k == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    (exposed,) = [a for k, a in instructions if k == "EXPOSE"]
    (command,) = [exec_form(a) for k, a in instructions if k == "CMD"]
    assert command[:2] == ["coldcopy", "serve"]
    assert command[command.index("--port") + 1] == exposed
    (health,) = [a for k, a in instructions if k == "HEALTHCHECK"]
    assert f"127.0.0.1:{exposed}/healthz" in health
    assert "curl" not in health and "wget" not in health, "python:3.11-slim has neither"


# --- compose -------------------------------------------------------------------------------


def test_compose_has_the_services_the_runbook_describes():
    services = compose()["services"]
    assert {"app", "worker", "migrate", "postgres", "redis"} <= set(services)
    commands = {name: services[name]["command"][:2] for name in ("app", "worker", "migrate")}
    assert commands == {
        "app": ["coldcopy", "serve"],
        "worker": ["coldcopy", "worker"],
        "migrate": ["coldcopy", "migrate"],
    }
    assert services["app"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    app_command = services["app"]["command"]
    port = app_command[app_command.index("--port") + 1]
    assert any(str(p).endswith(f":{port}") for p in services["app"]["ports"])


def test_only_serve_keeps_the_images_http_health_check():
    for name, service in compose()["services"].items():
        if "build" not in service:
            continue
        serves_http = service.get("command", ["coldcopy", "serve"])[:2] == ["coldcopy", "serve"]
        disabled = (service.get("healthcheck") or {}).get("disable") is True
        assert serves_http != disabled, f"{name}: /healthz check does not match what it runs"


# --- commands, settings, metrics and routes named anywhere ------------------------------


def test_every_coldcopy_command_in_the_container_files_and_runbook_exists():
    calls: list[tuple[str, list[str]]] = []
    for keyword, arguments in dockerfile():
        if keyword in ("CMD", "ENTRYPOINT", "RUN"):
            argv = exec_form(arguments)
            if argv and argv[0] == "coldcopy":
                calls.append((f"Dockerfile {keyword}", argv[1:]))
    for name, service in compose()["services"].items():
        argv = service.get("command") or []
        argv = shlex.split(argv) if isinstance(argv, str) else argv
        if argv and argv[0] == "coldcopy":
            calls.append((f"compose service {name}", argv[1:]))
    assert {where.split()[0] for where, _ in calls} == {"Dockerfile", "compose"}
    runbook_calls = [
        ("RUNBOOK.md", shlex.split(match))
        for code in markdown_code(RUNBOOK.read_text())
        for match in CLI_CALL.findall(code)
    ]
    assert runbook_calls, "the runbook names no coldcopy command"
    for where, argv in calls + runbook_calls:
        assert_cli_accepts(argv, where)


@pytest.mark.parametrize("path", [COMPOSE, RUNBOOK, DOCKERFILE], ids=lambda p: p.name)
def test_every_setting_named_is_a_real_setting(path):
    named = set(SETTING.findall(path.read_text()))
    unknown = sorted(named - set(PURPOSE))
    assert not unknown, f"{path.name} names settings ColdCopy does not have: {unknown}"


def exported_metric_names() -> dict[str, set[str]]:
    """Each metric family and the names Prometheus sees for it."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("_count", "_sum", "_created"),
    }
    return {
        family.name: {family.name}
        | {family.name + s for s in suffixes.get(family.type, ())}
        | {sample.name for sample in family.samples}
        for family in REGISTRY.collect()
    }


def test_every_metric_the_runbook_names_is_exported_and_every_metric_is_explained():
    families = exported_metric_names()
    exported = set().union(*families.values())
    named = set(METRIC.findall(RUNBOOK.read_text()))
    assert not named - exported, f"the runbook names metrics nobody exports: {named - exported}"
    unexplained = [family for family, names in families.items() if not names & named]
    assert not unexplained, f"the runbook does not explain {unexplained}"


@pytest.fixture
def served_by_router(tmp_path):
    """Whether ColdCopy's own router answers a path itself (else it goes to Bolt)."""
    services = build_services(make_settings(database_url=f"sqlite:///{tmp_path / 'coldcopy.db'}"))
    handed_to_slack: list[str] = []

    def slack(environ, start_response):
        handed_to_slack.append(environ["PATH_INFO"])
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b""]

    router = ColdCopyWSGI(services, slack)

    def served(path: str) -> bool:
        for method in ("GET", "POST"):
            environ = {"PATH_INFO": path, "REQUEST_METHOD": method, "CONTENT_LENGTH": "0"}
            environ["wsgi.input"] = io.BytesIO(b"")
            setup_testing_defaults(environ)
            before = len(handed_to_slack)
            router(environ, lambda status, headers: None)
            if len(handed_to_slack) == before:
                return True
        return False

    yield served
    services.close()


def slack_routes() -> set[str]:
    """What Bolt serves: the request URLs of the Slack app manifest, and the OAuth paths."""
    urls = re.findall(r"https://\S+", MANIFEST.read_text())
    return {urlsplit(url).path for url in urls} | {INSTALL_PATH, REDIRECT_PATH}


def test_every_route_the_runbook_and_health_check_name_is_served(served_by_router):
    named = routes_named(RUNBOOK.read_text()) | routes_named(DOCKERFILE.read_text())
    assert {"/healthz", "/readyz", "/metrics"} <= named
    unserved = sorted(r for r in named if r not in slack_routes() and not served_by_router(r))
    assert not unserved, f"named but not served: {unserved}"


def test_the_command_line_imports_no_metrics_before_serve_chooses_how_to_count():
    # serve sets PROMETHEUS_MULTIPROC_DIR before the metrics module is imported; had the CLI
    # imported it first (through the writer, say), each worker process would count alone.
    probe = "import sys, bot.runtime.cli; print('bot.core.metrics' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
