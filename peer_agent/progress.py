"""Progress of a transfer: bytes done, rate over a sliding window, and time left. Pure."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    size: int
    rate: float | None  # bytes per second over the window; None until two samples exist
    eta: float | None  # seconds left at that rate; None while unknown

    @property
    def fraction(self) -> float:
        return 1.0 if self.size == 0 else self.done / self.size


class RateMeter:
    """Bytes per second over the last ``window`` seconds of samples.

    A sliding window (not a lifetime average) so the rate follows a path that changes — a
    reconnect through a relay, say — within a few seconds, and (not an instant rate) so one
    late SACK does not make the display jump. A resumed prefix is the first sample's base, so
    it never counts as speed.
    """

    def __init__(self, size: int, done: int, now: float, window: float = 3.0) -> None:
        self.size = size
        self.window = window
        self._samples: deque[tuple[float, int]] = deque([(now, done)])

    @property
    def done(self) -> int:
        return self._samples[-1][1]

    def update(self, done: int, now: float) -> None:
        self._samples.append((now, done))
        # Keep one sample at or before the window's start so the span covers the whole window.
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window:
            self._samples.popleft()

    def progress(self, now: float) -> Progress:
        first_t, first_done = self._samples[0]
        _, last_done = self._samples[-1]
        span = now - first_t
        rate = (last_done - first_done) / span if span > 0 and len(self._samples) > 1 else None
        remaining = self.size - last_done
        if remaining <= 0:
            eta: float | None = 0.0
        elif rate:
            eta = remaining / rate
        else:
            eta = None
        return Progress(done=last_done, size=self.size, rate=rate, eta=eta)
