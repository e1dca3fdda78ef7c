"""A bundle's files: their names, the manifest that ties them together, and where a bundle is found.

A bundle is one directory; every file is JSON or plain tensors. ``manifest.json`` is written last and lists each
file with its SHA-256, so a bundle that was changed, truncated or half-copied is refused by name on load.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Dict, Iterable

from recbole_paragon.artifacts import ArtifactError, read_json, write_json

BUNDLE_DIR = "bundle"  # inside a run directory
MANIFEST = "manifest.json"
BACKBONE = "backbone.pt"  # {"state_dict": {name: tensor}}
MODEL = "model.json"  # model name, RecBole config values, the dataset facts the model is built from
TENSORS = "catalogue.pt"  # item feature tensors, user histories (internal ids)
CATALOGUE = "catalogue.json"  # item and user tokens, titles, categories, display fields
GENERATOR_TENSORS = "generator.pt"
GENERATOR_METADATA = "generator.json"
GRID = "grid.json"  # validation metrics of the adapters generated for a preference grid
FORMAT_VERSION = 1
FILES = (BACKBONE, MODEL, TENSORS, CATALOGUE, GENERATOR_TENSORS, GENERATOR_METADATA, GRID)
EXPORT_FIX = "export the bundle again (python run_recbole_paragon.py --stage=export ...)"


def bundle_directory(path: str) -> str:
    """``path`` itself when it holds a manifest, else ``path/bundle``; a clear error when neither does."""
    path = os.fspath(path)
    for candidate in (path, os.path.join(path, BUNDLE_DIR)):
        if os.path.isfile(os.path.join(candidate, MANIFEST)):
            return candidate
    raise ArtifactError(f"{path} holds no serving bundle ({MANIFEST} missing there and in {BUNDLE_DIR}/): "
                        f"export one with python run_recbole_paragon.py --stage=export --run_dir={path} ...")


def file_digest(path: str) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: str, payload: Dict[str, Any], names: Iterable[str] = FILES) -> Dict[str, Any]:
    """``manifest.json``: ``payload`` plus the format version and each file's SHA-256."""
    manifest = {**payload, "format_version": FORMAT_VERSION,
                "files": {name: file_digest(os.path.join(directory, name)) for name in names}}
    write_json(os.path.join(directory, MANIFEST), manifest)
    return manifest


def read_manifest(directory: str) -> Dict[str, Any]:
    """The manifest, after checking its version and every file's SHA-256 (nothing else is read before)."""
    manifest = read_json(os.path.join(directory, MANIFEST), EXPORT_FIX)
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        version = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise ArtifactError(f"{directory}/{MANIFEST} has format version {version!r}, this version reads "
                            f"{FORMAT_VERSION}; {EXPORT_FIX}")
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != set(FILES):
        raise ArtifactError(f"{directory}/{MANIFEST} does not list the bundle's files {list(FILES)}; {EXPORT_FIX}")
    for name, expected in files.items():
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            raise ArtifactError(f"{path} is missing; {EXPORT_FIX}")
        if file_digest(path) != expected:
            raise ArtifactError(f"{path} was changed after export (its SHA-256 differs from {MANIFEST}); "
                                f"{EXPORT_FIX}")
    return manifest
