"""The benchmarks stand on their own and stay runnable: every module imports from the
repository root without reaching into tests/, and the smoke run CI makes fails on an
over-granted quota (the run itself is .ci/run's step: python -m bench smoke)."""

from __future__ import annotations

import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = sorted((ROOT / "bench").glob("*.py"))


def test_every_benchmark_module_imports_without_reaching_into_tests():
    for path in BENCH:
        assert "sys.path" not in path.read_text(), f"{path.name} reaches for another import path"
        importlib.import_module(f"bench.{path.stem}")


def test_the_smoke_run_fails_on_an_over_grant():
    from bench.__main__ import smoke_verdict

    held = {"figure": "quota: PostgreSQL, 1 workspace", "met": True}
    assert smoke_verdict([held, held]) == 0
    assert smoke_verdict([held, {**held, "met": False}]) == 1
    assert smoke_verdict([]) == 1  # a quota run that reported nothing proves nothing
