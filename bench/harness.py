"""What every lab benchmark does around its measurements: a temp dir and a namespace lab that
are removed whatever happens (failure, Ctrl-C, a failed setup), and a failure reported as one
sentence instead of a traceback."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from tests.lab import Lab

Report = dict[str, Any]


class BenchError(RuntimeError):
    """A run failed; the message carries the process output that explains it."""


def run_in_lab(prefix: str, body: Callable[[Lab, Path], Coroutine[Any, Any, Report]]) -> Report | None:
    """Run ``body(lab, tmp)`` on a fresh event loop; None (after saying why) when a run failed."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    lab = Lab()
    try:
        async def run() -> Report:
            try:
                return await body(lab, tmp)
            finally:
                await lab.aclose()  # stop processes gracefully while the loop still runs

        return asyncio.run(run())
    except (BenchError, AssertionError) as exc:  # a process failed or went silent: say which
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return None
    finally:
        lab.close()  # idempotent; also after Ctrl-C or a failed setup
        shutil.rmtree(tmp, ignore_errors=True)
