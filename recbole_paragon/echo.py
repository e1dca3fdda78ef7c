"""How an error message quotes what a caller sent: a short prefix, never the whole value (a 1 MB token stays
out of the answer and out of the logs)."""
from __future__ import annotations

from typing import Any

#: The most characters of a caller's value an error message repeats.
ECHO_LIMIT = 40


def brief(value: Any, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` cut to ``limit`` characters, saying how long it was when cut."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"
