"""Run directories and atomic file writes shared by every stage."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any, Iterator


def run_directory(config) -> str:
    """``run_dir`` from the config, or ``<checkpoint_dir>/<model>-<dataset>``."""
    run_dir = config["run_dir"] if "run_dir" in config else None
    if not run_dir:
        run_dir = os.path.join(config["checkpoint_dir"] or "saved", f"{config['model']}-{config['dataset']}")
    return run_dir


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` in one step, on failure it vanishes."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    os.close(fd)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text(path: str, text: str) -> None:
    """Write text atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)


def write_json(path: str, payload: Any) -> None:
    """Write JSON atomically."""
    write_text(path, json.dumps(payload, indent=2, sort_keys=True))
