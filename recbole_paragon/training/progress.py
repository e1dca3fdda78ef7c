"""Progress bars that do not flood logs: shown only when asked for and when standard error is a terminal."""
from __future__ import annotations

import sys
from typing import Iterable, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def on_terminal(enabled: bool) -> bool:
    """Whether a progress bar may be drawn: asked for and standard error is a terminal. RecBole's own trainer draws
    tqdm bars whenever ``show_progress`` is on; the pipeline passes it this instead."""
    return bool(enabled) and sys.stderr.isatty()


def progress(iterable: Iterable[T], description: str, enabled: bool = True, **options) -> Iterable[T]:
    """``iterable`` with a tqdm bar when ``enabled`` and stderr is a terminal; the plain iterable otherwise (no
    carriage-return stream in log files or CI output)."""
    if not on_terminal(enabled):
        return iterable
    return tqdm(iterable, desc=description, **options)


def progress_bar(total: int, description: str, enabled: bool = True) -> tqdm:
    """A manually updated tqdm bar under the same rule as :func:`progress` (disabled off a terminal)."""
    return tqdm(total=total, desc=description, disable=not on_terminal(enabled))
