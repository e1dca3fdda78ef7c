"""Concurrent requests for new preferences share one sampling pass.

Generating one adapter costs about as much as generating a few dozen together (the sampler's cost is per step, not
per row), so callers that arrive while a pass runs are gathered into the next one; whoever finds the sampler idle
runs the pending requests (at most ``max_batch`` rows). A lone caller generates at once; when ``expected()`` says
more callers are on their way (requests in flight that have not reached the batcher yet), the pass waits for them
up to ``window`` seconds, so concurrent requests share one pass instead of splitting into a small and a large one.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, List, Optional

import torch


class _Request:
    def __init__(self, preferences: torch.Tensor) -> None:
        self.preferences = preferences
        self.result: Optional[torch.Tensor] = None
        self.error: Optional[BaseException] = None
        self.done = False


class GenerationBatcher:
    """Runs ``generate(preferences [B, K]) -> vectors [B, P]`` for concurrent callers, batching what waits."""

    def __init__(self, generate: Callable[[torch.Tensor], torch.Tensor], max_batch: int, window: float = 0.0,
                 expected: Optional[Callable[[], int]] = None) -> None:
        if int(max_batch) < 1:
            raise ValueError(f"serve_generation_batch must be at least 1, got {max_batch}")
        if not window >= 0:
            raise ValueError(f"serve_batch_window_ms must be >= 0, got {window * 1000}")
        self.generate = generate
        self.max_batch = int(max_batch)
        self.window = float(window)
        self.expected = expected
        self._condition = threading.Condition()
        self._pending: List[_Request] = []
        self._busy = False
        self.passes = 0  # sampling passes run (tests and benchmarks read it)

    def __call__(self, preferences: torch.Tensor) -> torch.Tensor:
        """Vectors for ``preferences`` (blocks until they are generated, by this thread or another)."""
        request = _Request(preferences)
        with self._condition:
            self._pending.append(request)
            self._condition.notify_all()  # a pass that is gathering callers may be waiting for this one
            while not request.done:
                if self._busy:
                    self._condition.wait()
                    continue
                self._busy = True
                self._gather()
                batch = self._take()
                self._condition.release()
                try:
                    self._run(batch)
                finally:
                    self._condition.acquire()
                    self._busy = False
                    self._condition.notify_all()
        if request.error is not None:
            raise request.error
        return request.result

    def _gather(self) -> None:
        """Wait (lock held by the caller, released while waiting) for callers ``expected()`` announces."""
        if self.expected is None or self.window <= 0:
            return
        deadline = time.monotonic() + self.window
        while len(self._pending) < min(self.expected(), self.max_batch):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._condition.wait(remaining)

    def _take(self) -> List[_Request]:
        """The oldest pending requests, up to ``max_batch`` rows (always at least one request)."""
        batch, rows = [], 0
        while self._pending and (not batch or rows + len(self._pending[0].preferences) <= self.max_batch):
            request = self._pending.pop(0)
            batch.append(request)
            rows += len(request.preferences)
        return batch

    def _run(self, batch: List[_Request]) -> None:
        """One sampling pass over the batch's distinct preferences; results (or the error) go to every request."""
        try:
            unique, inverse = torch.unique(torch.cat([r.preferences for r in batch]), dim=0, return_inverse=True)
            vectors = self.generate(unique)[inverse]
            self.passes += 1
            start = 0
            for request in batch:
                request.result = vectors[start:start + len(request.preferences)]
                start += len(request.preferences)
        except BaseException as error:  # every waiting caller gets the error, none hangs
            for request in batch:
                request.error = error
        for request in batch:
            request.done = True
