"""Signed bundles: an HMAC-SHA256 over ``manifest.json`` with a secret key from ``PARAGON_BUNDLE_KEY``.

The manifest lists every file's SHA-256, so a signature over it covers the whole bundle. Without a key the manifest
is a checksum: it catches a changed, truncated or half-copied file, but whoever can write the files can also write
a matching manifest. With a key set at export, ``signature.json`` is written beside the manifest; with a key set at
load, a bundle whose signature is missing or does not match is refused before anything else is read.

    PARAGON_BUNDLE_KEY=... python run_recbole_paragon.py --stage=export ...   # export signed
    PARAGON_BUNDLE_KEY=... python -m recbole_paragon.bundle.sign DIR       # sign a bundle you trust
"""
from __future__ import annotations

import hashlib
import hmac
import os
from typing import Mapping, Optional

from recbole_paragon.artifacts import ArtifactError, read_json, write_json

KEY_VARIABLE = "PARAGON_BUNDLE_KEY"
SIGNATURE = "signature.json"
ALGORITHM = "HMAC-SHA256"
MIN_KEY_LENGTH = 16
UNSET = object()  # "read the key from the environment" (``None`` means: no key)


def bundle_key(environ: Mapping[str, str] = os.environ) -> Optional[bytes]:
    """The signing key (``None``: none configured); a short key is an error, not a weak signature."""
    key = environ.get(KEY_VARIABLE) or None
    if key is None:
        return None
    if len(key) < MIN_KEY_LENGTH:
        raise ArtifactError(f"{KEY_VARIABLE} must be at least {MIN_KEY_LENGTH} characters; make one with "
                            f"python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return key.encode()


def signature_of(manifest: bytes, key: bytes) -> str:
    return hmac.new(key, manifest, hashlib.sha256).hexdigest()


def sign(directory: str, manifest_name: str, key: Optional[bytes]) -> None:
    """Write ``signature.json`` for the manifest in ``directory`` (nothing without a key; an old one is removed)."""
    path = os.path.join(directory, SIGNATURE)
    if key is None:
        if os.path.exists(path):
            os.remove(path)
        return
    with open(os.path.join(directory, manifest_name), "rb") as handle:
        write_json(path, {"algorithm": ALGORITHM, "manifest": manifest_name,
                          "signature": signature_of(handle.read(), key)})


def verify(directory: str, manifest_name: str, manifest: bytes, key: Optional[bytes]) -> None:
    """Refuse ``manifest`` (its bytes) unless ``signature.json`` signs it with ``key``; no key, no check."""
    if key is None:
        return
    path = os.path.join(directory, SIGNATURE)
    fix = (f"export the bundle again with {KEY_VARIABLE} set, or sign a bundle you trust with "
           f"{KEY_VARIABLE}=... python -m recbole_paragon.bundle.sign {directory}")
    if not os.path.isfile(path):
        raise ArtifactError(f"{os.path.join(directory, manifest_name)} is not signed ({path} is missing) and "
                            f"{KEY_VARIABLE} is set, so only signed bundles load; {fix}")
    stored = read_json(path, fix)
    given = stored.get("signature") if isinstance(stored, dict) else None
    if not isinstance(given, str) or not hmac.compare_digest(given, signature_of(manifest, key)):
        raise ArtifactError(f"{path} does not sign {os.path.join(directory, manifest_name)} with {KEY_VARIABLE}: "
                            f"the bundle was changed after export or signed with another key; {fix}")

