"""Sign a bundle you trust with ``PARAGON_BUNDLE_KEY`` (after checking every file against its manifest):

    PARAGON_BUNDLE_KEY=... python -m recbole_paragon.bundle.sign BUNDLE_OR_RUN_DIR
"""
from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

from recbole_paragon.bundle.files import MANIFEST, bundle_directory, read_manifest
from recbole_paragon.bundle.signing import KEY_VARIABLE, SIGNATURE, bundle_key, sign


def main(argv: Optional[Sequence[str]] = None) -> None:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) != 1:
        raise SystemExit(f"usage: {KEY_VARIABLE}=... python -m recbole_paragon.bundle.sign BUNDLE_DIR")
    key = bundle_key()
    if key is None:
        raise SystemExit(f"set {KEY_VARIABLE} to the key to sign with")
    directory = bundle_directory(arguments[0])
    read_manifest(directory, key=None)  # every file still matches its SHA-256
    sign(directory, MANIFEST, key)
    print(f"signed {os.path.join(directory, MANIFEST)} -> {os.path.join(directory, SIGNATURE)}")


if __name__ == "__main__":
    main()
