"""A bundle's files: their names, the manifest that ties them together, and where a bundle is found.

A bundle is one directory; every file is JSON or plain tensors (and, for large catalogues, the item index, a faiss
file read by faiss's own parser, never unpickled). ``manifest.json`` is written last and lists each file with its
SHA-256, so a bundle that was changed, truncated or half-copied is refused by name on load. With
``PARAGON_BUNDLE_KEY`` set, the manifest is also signed (:mod:`recbole_paragon.bundle.signing`).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, Iterable

from recbole_paragon.artifacts import ArtifactError, write_json
from recbole_paragon.bundle.signing import UNSET, bundle_key, sign, verify

BUNDLE_DIR = "bundle"  # inside a run directory
MANIFEST = "manifest.json"
BACKBONE = "backbone.pt"  # {"state_dict": {name: tensor}}
MODEL = "model.json"  # model name, RecBole config values, the dataset facts the model is built from
TENSORS = "catalogue.pt"  # item feature tensors, user histories (internal ids)
CATALOGUE = "catalogue.json"  # item and user tokens, titles, categories, display fields
GENERATOR_TENSORS = "generator.pt"
GENERATOR_METADATA = "generator.json"
GRID = "grid.json"  # validation metrics of the adapters generated for a preference grid
INDEX = "items.faiss"  # the ANN index over the item table (only for catalogues of serve_index_min_items or more)
FORMAT_VERSION = 1
FILES = (BACKBONE, MODEL, TENSORS, CATALOGUE, GENERATOR_TENSORS, GENERATOR_METADATA, GRID)
OPTIONAL_FILES = (INDEX,)
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


def write_manifest(directory: str, payload: Dict[str, Any], names: Iterable[str] = FILES,
                   key: Any = UNSET) -> Dict[str, Any]:
    """``manifest.json``: ``payload`` plus the format version and the SHA-256 of each file of ``names`` and of each
    optional file present; signed with ``key`` (default: ``PARAGON_BUNDLE_KEY``, none: unsigned)."""
    present = [name for name in OPTIONAL_FILES if os.path.isfile(os.path.join(directory, name))]
    manifest = {**payload, "format_version": FORMAT_VERSION,
                "files": {name: file_digest(os.path.join(directory, name)) for name in [*names, *present]}}
    write_json(os.path.join(directory, MANIFEST), manifest)
    sign(directory, MANIFEST, bundle_key() if key is UNSET else key)
    return manifest


def read_manifest(directory: str, key: Any = UNSET) -> Dict[str, Any]:
    """The manifest, after checking its signature (when a key is set: ``key``, default ``PARAGON_BUNDLE_KEY``),
    its version and every file's SHA-256 (nothing else is read before)."""
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise ArtifactError(f"{path} cannot be read ({error.__class__.__name__}); {EXPORT_FIX}") from None
    verify(directory, MANIFEST, raw, bundle_key() if key is UNSET else key)
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise ArtifactError(f"{path} is not valid JSON; {EXPORT_FIX}") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        version = manifest.get("format_version") if isinstance(manifest, dict) else None
        raise ArtifactError(f"{directory}/{MANIFEST} has format version {version!r}, this version reads "
                            f"{FORMAT_VERSION}; {EXPORT_FIX}")
    files = manifest.get("files")
    if not isinstance(files, dict) or not set(FILES) <= set(files) <= set(FILES) | set(OPTIONAL_FILES):
        raise ArtifactError(f"{directory}/{MANIFEST} does not list the bundle's files {list(FILES)}; {EXPORT_FIX}")
    for name, expected in files.items():
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            raise ArtifactError(f"{path} is missing; {EXPORT_FIX}")
        if file_digest(path) != expected:
            raise ArtifactError(f"{path} was changed after export (its SHA-256 differs from {MANIFEST}); "
                                f"{EXPORT_FIX}")
    return manifest
