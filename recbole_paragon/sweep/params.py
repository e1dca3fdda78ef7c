"""RecBole's hyper-parameter file format (one ``name type values`` line per parameter) as Ray Tune spaces."""
from __future__ import annotations

import ast
import math
from typing import Any, Dict, Optional, Tuple

PARAM_TYPES = ("choice", "uniform", "quniform", "loguniform")


def parse_params_line(line: str, number: int = 0) -> Optional[Tuple[str, Any]]:
    """``(name, Ray Tune domain)`` of one params-file line; None for a blank or comment line."""
    from ray import tune

    text = line.split("#", 1)[0].strip()
    if not text:
        return None

    def fail(reason: str) -> ValueError:
        return ValueError(f"params file line {number}: {line.strip()!r}: {reason}. Expected `name type value` with "
                          f"type one of {', '.join(PARAM_TYPES)}, e.g. `learning_rate loguniform -8,0`")

    parts = text.split()
    if len(parts) < 3:
        raise fail("needs a name, a type and a value")
    name, kind, value = parts[0], parts[1], "".join(parts[2:])
    if kind not in PARAM_TYPES:
        raise fail(f"unknown type {kind!r}")
    if kind == "choice":
        try:
            options = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise fail("choice needs a Python list literal such as [64,96]") from None
        if not isinstance(options, (list, tuple)) or not options:
            raise fail("choice needs a non-empty list")
        return name, tune.choice(list(options))
    try:
        bounds = [float(v) for v in value.split(",")]
    except ValueError:
        raise fail("bounds must be comma-separated numbers") from None
    if any(not math.isfinite(b) for b in bounds):
        raise fail("bounds must be finite")
    expected = 3 if kind == "quniform" else 2
    if len(bounds) != expected:
        raise fail(f"{kind} needs {'low,high,q' if expected == 3 else 'low,high'}")
    low, high = bounds[0], bounds[1]
    if not low < high:
        raise fail("low must be smaller than high")
    if kind == "uniform":
        return name, tune.uniform(low, high)
    if kind == "loguniform":  # hyperopt's loguniform(low, high) = exp(uniform(low, high))
        return name, tune.loguniform(math.exp(low), math.exp(high))
    q = bounds[2]
    if q <= 0:
        raise fail("q must be positive")
    if all(float(b).is_integer() for b in bounds):  # sizes, layers: Python ints, as a model needs them
        return name, tune.choice(list(range(int(low), int(high) + 1, int(q))))  # (tune.qrandint yields floats)
    return name, tune.quniform(low, high, q)


def parse_params(text: str) -> Dict[str, Any]:
    """Search space (name -> Ray Tune domain) of a params file's text."""
    space: Dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        parsed = parse_params_line(line, number)
        if parsed is None:
            continue
        name, domain = parsed
        if name in space:
            raise ValueError(f"params file line {number}: {line.strip()!r}: {name} is already defined")
        space[name] = domain
    if not space:
        raise ValueError("the params file defines no parameter")
    return space


def parse_params_file(path: str) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        try:
            return parse_params(handle.read())
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
