"""The evaluation protocol of a run: full ranking, or RecBole's sampled evaluation (the paper's protocol).

RecBole's ``eval_args.mode`` (one value, or one per phase ``{valid: ..., test: ...}``):

* ``full``: each held-out item is ranked against every item of the catalogue (this plugin's default);
* ``uniN`` / ``popN``: against ``N`` negatives sampled per user, uniformly / by popularity (``uni100``: the
  held-out item among 101 items; Paragon's paper and code rank it among 99 sampled negatives, i.e. ``uni99``);
* ``labeled``: value-based evaluation of labelled interactions, which ranks nothing.

Paragon's stages rank cached states (:mod:`recbole_paragon.model.cache`), so they accept ``full`` and the sampled
modes with one held-out item per user (split ``LS``), and refuse the rest before anything trains.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Optional, Tuple

PHASES = ("valid", "test")
_SAMPLED = re.compile(r"^(uni|pop)(\d+)$")


def eval_modes(config) -> Dict[str, str]:
    """``{"valid": mode, "test": mode}`` from ``eval_args.mode`` (a string applies to both phases)."""
    mode = dict(config["eval_args"]).get("mode", "full")
    if isinstance(mode, dict):
        default = mode.get("valid", mode.get("test", "full"))
        return {phase: str(mode.get(phase, default)) for phase in PHASES}
    return {phase: str(mode) for phase in PHASES}


def sampled_negatives(mode: str) -> Optional[Tuple[str, int]]:
    """``("uniform" | "popularity", N)`` for ``uniN`` / ``popN``; None for ``full`` (and anything else)."""
    match = _SAMPLED.match(str(mode))
    if match is None:
        return None
    return ("uniform" if match.group(1) == "uni" else "popularity", int(match.group(2)))


def is_sampled(config) -> bool:
    """Whether any phase ranks against sampled negatives."""
    return any(sampled_negatives(mode) for mode in eval_modes(config).values())


def check_protocol(config) -> None:
    """Refuse, before anything trains, a protocol Paragon's cached evaluation cannot run: ``labeled`` (nothing is
    ranked), an unknown mode, and sampled negatives with more than one held-out item per user (a split other than
    ``LS``)."""
    for phase, mode in eval_modes(config).items():
        if mode == "full":
            continue
        if mode == "labeled":
            raise ValueError(f"eval_args.mode {phase}={mode!r} (value-based evaluation of labelled data) ranks "
                             "nothing: Paragon's objectives and reports are ranking metrics. Use full (every item) or "
                             "uniN / popN (the held-out item among N sampled negatives, e.g. uni100)")
        if sampled_negatives(mode) is None:
            raise ValueError(f"eval_args.mode {phase}={mode!r} is not a mode RecBole knows: full, uniN or popN "
                             "(N sampled negatives, e.g. uni100), labeled")
        split = dict(config["eval_args"]).get("split") or {}
        if "LS" not in split:
            raise ValueError(f"eval_args.mode {phase}={mode!r} (sampled negatives) needs one held-out item per user: "
                             f"set eval_args.split to {{'LS': 'valid_and_test'}} (got {split}); Paragon's cached "
                             "evaluation ranks each user's held-out item among that user's own negatives")


def describe_protocol(config, n_items: Optional[int] = None) -> Dict[str, Any]:
    """What each phase ranks, in words and as data, for the report."""
    described: Dict[str, Any] = {"mode": eval_modes(config)}
    for phase, mode in described["mode"].items():
        sampled = sampled_negatives(mode)
        if sampled is None:
            catalogue = f"{n_items - 1} items" if n_items else "items"
            described[phase] = f"full ranking: the held-out item among all {catalogue} of the catalogue"
        else:
            described[phase] = (f"sampled: the held-out item among {sampled[1]} negatives sampled per user "
                                f"({sampled[0]})")
    return described
