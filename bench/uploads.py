"""Hostile uploads: how long refusing each takes, and the most memory any refusal needs.

``python -m bench.run uploads`` runs this part alone. The files are the test corpus
(tests/hostile_files.py), built for real; each goes through the ledger import's reader, which the
sign-in sheet import shares (services/xlsx_input.py).
"""

import contextlib
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.harness import Row
from services.ledger_import import LedgerRejected, read_ledger
from tests.hostile_files import HOSTILE, many_rows

TARGET_MS = 2000
TARGET_MB = 64


def measure(bench) -> None:
    corpus = dict(HOSTILE)
    corpus["100,000 rows"] = (many_rows, "行的上限")
    peak_mb, peak_what = 0.0, ""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "台账.xlsx"
        for what, (build, words) in corpus.items():
            data = build()
            path.write_bytes(data)
            samples = []
            for _ in range(3):
                start = time.perf_counter()
                try:
                    read_ledger(path)
                except LedgerRejected as refused:
                    assert words in str(refused), (what, str(refused))
                else:
                    raise AssertionError(f"{what} was not refused")
                samples.append((time.perf_counter() - start) * 1000)
            tracemalloc.start()
            with contextlib.suppress(LedgerRejected):
                read_ledger(path)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            if peak / 2**20 > peak_mb:
                peak_mb, peak_what = peak / 2**20, what
            bench.add(f"refuse upload: {what}", samples, TARGET_MS, f"{len(data) / 1024:,.0f} KB file")
    bench.rows.append(
        Row(
            "refuse upload: peak Python memory of any (tracemalloc)", peak_mb, TARGET_MB, peak_what, unit="MB"
        )
    )
