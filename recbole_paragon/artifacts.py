"""Run-directory files: their names, atomic writes, safe reads with errors that name the file, fingerprints.

Everything a stage writes goes through :func:`atomic_path` (a crash never leaves half a file), and everything read
back is JSON or plain tensors (``torch.load(weights_only=True)``): nothing loaded from a run directory can execute
code. A file that cannot be read raises :class:`ArtifactError` naming the file and what to do about it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from typing import Any, Iterator, Mapping

import numpy as np
import torch

BACKBONE_CHECKPOINT = "backbone.pth"  # RecBole's own (pickled) checkpoint: written, never loaded by the plugin
BACKBONE_STATE = "backbone-state.pt"  # the same weights as plain tensors: what the plugin loads
BACKBONE_METADATA = "backbone.json"
BANK_TENSORS = "bank.pt"
BANK_METADATA = "bank.json"
GENERATOR_TENSORS = "generator-{kind}.pt"
GENERATOR_METADATA = "generator-{kind}.json"
USER_GROUPS = "user_groups.json"
RETUNED = "retuned.pt"  # re-tuned adapters of the evaluation stage, reused while the tuning settings match


class ArtifactError(ValueError):
    """A run-directory file is missing, unreadable or inconsistent; the message says which and how to fix it."""


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


def save_tensors(path: str, payload: Any) -> None:
    """``torch.save`` atomically (plain tensors, numbers, strings, lists and dicts only, so loading is safe)."""
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)


def read_json(path: str, fix: str) -> Any:
    """Parsed JSON of ``path``; a missing or malformed file raises :class:`ArtifactError` ending with ``fix``."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise ArtifactError(f"{path} does not exist; {fix}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{path} is not readable JSON ({error}); {fix}") from None


def load_tensors(path: str, fix: str, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: plain tensors only, so a crafted pickle never runs. A missing,
    truncated or foreign file raises :class:`ArtifactError` naming it and ending with ``fix``."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise ArtifactError(f"{path} does not exist; {fix}") from None
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError, zipfile errors...
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ArtifactError(f"{path} cannot be loaded as plain tensors ({first_line}); {fix}") from None


def tensors_fingerprint(tensors: Mapping[str, torch.Tensor], settings: Any = None) -> str:
    """SHA-256 over ``settings`` (JSON, if given) then each tensor's name and bytes in name order: identifies
    weights (a backbone) or contents (a bank) exactly."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()) if settings is not None else hashlib.sha256()
    for name, tensor in sorted(tensors.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def fingerprint(settings: Any) -> str:
    """SHA-256 of a JSON-able value (keys sorted): two equal settings give the same fingerprint."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def to_jsonable(value: Any) -> Any:
    """Plain JSON types: tensors / numpy → lists and floats, tuples → lists, non-finite floats → ``None``,
    dict keys → ``str``, RecBole ``Config`` → its ``final_config_dict``, anything else unknown → ``str``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return to_jsonable(value.item() if value.dim() == 0 else value.tolist())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "final_config_dict"):
        return to_jsonable(dict(value.final_config_dict))
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)
