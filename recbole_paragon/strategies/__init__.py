"""Multi-objective strategies by name: adding one is adding a file here and a line to ``STRATEGIES``."""
from __future__ import annotations

from typing import Dict, Sequence

from recbole_paragon.strategies.base import Strategy
from recbole_paragon.strategies.linear import Linear
from recbole_paragon.strategies.pmtrec import PMTRec
from recbole_paragon.strategies.pub import PUB, nash_weights

STRATEGIES: Dict[str, type] = {Linear.name: Linear, PUB.name: PUB, PMTRec.name: PMTRec}


def build_strategy(name: str, config, preference: Sequence[float]) -> Strategy:
    """Instantiate the strategy called ``name``; unknown names list the available ones."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; available: {', '.join(sorted(STRATEGIES))}")
    return STRATEGIES[name](config, preference)


__all__ = ["Strategy", "STRATEGIES", "build_strategy", "Linear", "PUB", "PMTRec", "nash_weights"]
