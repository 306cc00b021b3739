"""Freed memory goes back to the system after a large, short-lived buffer (bot/core/memory.py):
what a full-size lead list's file and lead files leave behind must not stay resident."""

from __future__ import annotations

from pathlib import Path

from bot.core.memory import give_back_freed_memory


def resident_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_freed_blocks_between_live_ones_are_given_back():
    # 100 KB blocks (under malloc's mmap threshold, so on the heap), each followed by a small
    # one that stays: the freed blocks are holes in the heap, which free() alone keeps.
    big, kept = [], []
    for n in range(1500):
        big.append(bytes([n % 256]) * 100_000)
        kept.append(bytes([n % 256]) * 600)
    before = resident_mib()
    big.clear()
    after_free = resident_mib()
    assert give_back_freed_memory()
    after_trim = resident_mib()
    assert before - after_trim > 100, (before, after_free, after_trim)
    assert len(kept) == 1500
