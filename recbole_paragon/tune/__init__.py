"""Deprecated alias of :mod:`recbole_paragon.sweep` (renamed in 0.2: "tune" now only means tuning one adapter)."""
import warnings

from recbole_paragon.sweep import *  # noqa: F401,F403
from recbole_paragon.sweep import __all__  # noqa: F401

warnings.warn("recbole_paragon.tune was renamed recbole_paragon.sweep; the old name goes in the next release",
              DeprecationWarning, stacklevel=2)
