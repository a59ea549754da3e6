"""Adaptive chunk sizes: steer each chunk of a long import toward a target duration.

After each chunk the sizer is told how many records it held and how long it took. From that rate
it projects how long a full chunk takes and moves the size toward the target: grow when chunks are
fast, shrink when slow, keep the size while the projection is within a tolerance band around the
target (so noise does not make it flap), change by at most `max_step`x per chunk, and stay within
[minimum, maximum].
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class AdaptiveChunker:
    target_seconds: float = 0.25
    minimum: int = 10
    maximum: int = 200
    size: int = 50
    # Within target * (1 ± tolerance) the size stays as it is.
    tolerance: float = 0.2
    max_step: float = 2.0

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.maximum:
            raise ValueError(
                f"chunk bounds must satisfy 1 <= minimum <= maximum, got "
                f"{self.minimum} and {self.maximum}"
            )
        if self.target_seconds <= 0 or self.max_step <= 1 or not 0 <= self.tolerance < 1:
            raise ValueError("target_seconds > 0, max_step > 1 and 0 <= tolerance < 1 are needed")
        self.size = self._bounded(self.size)

    def record(self, count: int, seconds: float) -> int:
        """Learn from a chunk of `count` records that took `seconds`; returns the next size."""
        if count <= 0:
            return self.size
        # What a full chunk would take at this chunk's rate (a short last chunk counts for its
        # real size).
        projected = seconds * self.size / count
        if abs(projected - self.target_seconds) <= self.target_seconds * self.tolerance:
            return self.size
        wanted = self.target_seconds / projected if projected > 0 else self.max_step
        step = min(max(wanted, 1 / self.max_step), self.max_step)
        self.size = self._bounded(round(self.size * step))
        return self.size

    def _bounded(self, size: int) -> int:
        return max(self.minimum, min(self.maximum, size))
