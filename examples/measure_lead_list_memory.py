"""How much memory reading a full-size lead list takes: a 5,000-row file just under 5 MB, in
UTF-8 and in Windows-1252 (the path through charset-normalizer), read with read_lead_list.

Run from the repository root:  .venv/bin/python examples/measure_lead_list_memory.py

Each file is read in a fresh process, its bytes loaded first. It prints, per encoding, the rise
of the process's peak resident set (VmHWM in /proc/self/status) over that idle process, which
is what the 64 MiB budget is about, and the peak Python allocation of the read (tracemalloc).
"""

from __future__ import annotations

import gc
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.writing.lead_list import LeadList, read_lead_list
from testkit.lead_files import lead_list


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def measure(path: Path) -> None:
    """Read one file in this (fresh) process: its bytes are loaded, then the read is measured."""
    data = path.read_bytes()
    gc.collect()
    reset_peak_rss()
    idle = peak_rss_kib()
    started = time.perf_counter()
    result = read_lead_list(data)
    seconds = time.perf_counter() - started
    rise = peak_rss_kib() - idle
    assert isinstance(result, LeadList), result
    del result
    gc.collect()
    # Then Python's own allocations, in a second read: tracemalloc's bookkeeping would have
    # added to the resident figure above.
    tracemalloc.start()
    result = read_lead_list(data)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"{path.stem:>7}: {len(data) / 1024 / 1024:.2f} MB, {len(result.leads):,} leads as "
        f"{result.encoding}, {seconds:.2f} s; peak RSS above idle {rise / 1024:.1f} MiB; "
        f"tracemalloc peak {traced_peak / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--read"]:
        measure(Path(sys.argv[2]))
    else:
        with tempfile.TemporaryDirectory() as folder:
            for encoding in sys.argv[1:] or ["utf-8", "cp1252"]:
                path = Path(folder) / f"{encoding}.csv"
                path.write_bytes(lead_list(encoding))
                subprocess.run([sys.executable, __file__, "--read", str(path)], check=True)
