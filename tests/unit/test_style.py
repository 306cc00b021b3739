"""The code's structure: its layers import only downwards, no module imports another in a
circle, nothing below the Slack layer imports Slack, no module runs past 400 lines or is named
for nothing in particular. (Lint and formatting are .ci/run's own step: `ruff check`,
`ruff format --check`.)"""

from __future__ import annotations

import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SLACK_PACKAGES = ("slack_sdk", "slack_bolt")
# The layers, bottom first: a module imports its own layer and those below it, never above.
LAYERS = (
    "storage",  # the database: models, the ledger, generation rows, migrations
    "bot.core",  # settings, metrics, logs, a clock, the dispatcher protocol
    "bot.writing",  # the brief, the prompt, the writer, quality notes, exports
    "bot.domain",  # plain rules: submissions, limits, billing, rewrites
    "bot.sequencers",  # one small client per sending tool
    "bot.slack",  # Slack I/O: listeners, blocks, modals, the thread poster, the Home tab
    "bot.flows",  # the use cases: write a sequence, rewrite an email, the sweeper
    "bot.runtime",  # process entry points and wiring: serve, worker, the CLI
)
# Below bot.slack nothing imports Slack; the one exception: the schema keeps Slack's
# installation tables exactly as slack_sdk defines them, so the migrations hold them too.
SCHEMA_ONLY = {
    "slack_sdk.oauth.installation_store.sqlalchemy",
    "slack_sdk.oauth.state_store.sqlalchemy",
}


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function (an import inside a
    function still ties the two modules together). `from package import module` counts as
    importing that module."""
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names}
            found = submodules & set(project_modules())
            names.update(found or {node.module})
            if len(found) < len(submodules):
                names.add(node.module)
    return names


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


@functools.cache
def project_modules() -> dict[str, Path]:
    paths = [*(ROOT / "bot").rglob("*.py"), *(ROOT / "storage").rglob("*.py")]
    # bot/__init__.py holds nothing: the layers are its packages.
    return {
        module_name(p): p
        for p in paths
        if "migrations" not in p.parts and p != ROOT / "bot/__init__.py"
    }


def layer_of(module: str) -> int:
    return max(
        i for i, layer in enumerate(LAYERS) if module == layer or module.startswith(layer + ".")
    )


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {
        name: {m for m in imported_modules(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_imports_point_only_down_the_layers():
    upward = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in targets
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_no_modules_import_each_other_in_a_circle():
    graph = import_graph()
    circles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_below_the_slack_layer_nothing_imports_slack():
    slack_free = [m for m in project_modules() if layer_of(m) < LAYERS.index("bot.slack")]
    offenders = [
        f"{module} imports {name}"
        for module in slack_free
        for name in imported_modules(project_modules()[module])
        if name.split(".")[0] in SLACK_PACKAGES
        and not (module == "storage.models" and name.startswith(tuple(SCHEMA_ONLY)))
    ]
    assert offenders == []


def test_no_module_is_longer_than_400_lines():
    long = {
        name: lines
        for name, path in project_modules().items()
        if (lines := len(path.read_text().splitlines())) > 400
    }
    assert long == {}


def test_no_module_is_named_for_nothing_in_particular():
    vague = {"utils.py", "helpers.py", "manager.py", "misc.py", "common.py"}
    found = [str(p.relative_to(ROOT)) for p in (ROOT / "bot").rglob("*.py") if p.name in vague]
    found += [str(p.relative_to(ROOT)) for p in (ROOT / "storage").rglob("*.py") if p.name in vague]
    assert found == []
