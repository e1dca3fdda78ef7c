"""Rules a setting's value must follow: a type, a range, choices; each says in words what it allows and lists
values it refuses (for the tests). :mod:`recbole_paragon.schema` assigns one to every setting."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, List, Mapping, Optional, Tuple

__all__ = ["Rule", "anything", "as_names", "choice", "files_by_name", "flag", "fraction_or_fractions", "index_or_name", "integer",
           "integers", "mapping", "names", "number", "one_or_many", "preference", "preferences", "text"]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


@dataclass(frozen=True)
class Rule:
    """What one setting accepts. ``test(value)`` is True for a valid value; ``allowed`` says it in words."""

    test: Callable[[Any], bool]
    allowed: str
    optional: bool = False  # None is the setting's own value (not only "use the yaml default")
    choices: Tuple[str, ...] = field(default=())
    invalid: Tuple[Any, ...] = field(default=())  # values the rule refuses (the schema's tests feed them)

    def accepts(self, value: Any) -> bool:
        if value is None:  # ~ means "the default" for every setting (settings.setting reads the yaml's)
            return True
        try:
            return bool(self.test(value))
        except (TypeError, ValueError):
            return False

    def describe(self) -> str:
        return self.allowed + (" or ~ (none)" if self.optional else "")


def _bounds(low: Optional[float], high: Optional[float], low_open: bool, high_open: bool) -> Tuple[Callable, str]:
    def test(number: float) -> bool:
        return ((low is None or (number > low if low_open else number >= low)) and
                (high is None or (number < high if high_open else number <= high)))

    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high}")
    return test, " and ".join(parts)


def integer(low: Optional[int] = None, high: Optional[int] = None, optional: bool = False) -> Rule:
    """A whole number (not a bool) within ``[low, high]``."""
    test, words = _bounds(low, high, False, False)
    invalid = ("3", True, 2.5) + ((low - 1,) if low is not None else ()) + ((high + 1,) if high is not None else ())
    return Rule(lambda v: _is_int(v) and test(v), f"an integer{' ' + words if words else ''}", optional,
                invalid=invalid)


def number(low: Optional[float] = None, high: Optional[float] = None, low_open: bool = False,
           high_open: bool = False, optional: bool = False) -> Rule:
    """A finite number (ints accepted, bools not) within the bounds."""
    test, words = _bounds(low, high, low_open, high_open)
    invalid = ("0.5", True, float("nan"), float("inf")) + \
        ((low if low_open else low - 1,) if low is not None else ()) + \
        ((high if high_open else high + 1,) if high is not None else ())
    return Rule(lambda v: _is_number(v) and test(v), f"a number{' ' + words if words else ''}", optional,
                invalid=invalid)


def flag() -> Rule:
    return Rule(lambda v: isinstance(v, bool), "True or False", invalid=("yes", 1, 0))


def text(optional: bool = False) -> Rule:
    return Rule(lambda v: isinstance(v, str) and v != "", "a non-empty string", optional, invalid=("", 3, ["a"]))


def choice(*options: str, optional: bool = False) -> Rule:
    return Rule(lambda v: isinstance(v, str) and v in options, "one of " + ", ".join(options), optional, tuple(options),
                invalid=("no-such-choice", 1, True))


def as_names(value: Any) -> List[str]:
    if isinstance(value, str):  # the command line's --key=[a,b] or a,b arrives as one string
        return [part.strip(" '\"") for part in value.strip("[]() ").split(",") if part.strip(" '\"")]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise TypeError("not a list of names")


def names(*options: str, optional: bool = False) -> Rule:
    """A list of names (or ``a,b`` as one string); with ``options``, each one of them."""
    allowed = "a list of names" + (f" from {', '.join(options)}" if options else "")
    return Rule(lambda v: all(n in options for n in as_names(v)) if options else as_names(v) is not None,
                allowed, optional, tuple(options), invalid=(3, [1, 2]) + (("no-such-name",) if options else ()))


def integers(low: Optional[int] = None, optional: bool = False) -> Rule:
    test, words = _bounds(low, None, False, False)
    return Rule(lambda v: isinstance(v, (list, tuple)) and all(_is_int(x) and test(x) for x in v),
                f"a list of integers{' ' + words if words else ''}", optional,
                invalid=(3, ["a"], [1.5]) + (([low - 1],) if low is not None else ()))


def one_or_many(rule: Rule) -> Rule:
    """``rule``'s value, or a non-empty list of them."""
    return Rule(lambda v: v is not None and rule.accepts(v) or (isinstance(v, (list, tuple)) and len(v) > 0 and
                                                                all(x is not None and rule.accepts(x) for x in v)),
                f"{rule.allowed}, or a list of them", rule.optional,
                invalid=tuple(rule.invalid) + ([],) + tuple([x] for x in rule.invalid[:2]))


def preferences(optional: bool = True) -> Rule:
    """A list of preferences (each a list of non-negative numbers)."""
    return Rule(lambda v: isinstance(v, (list, tuple)) and all(
        isinstance(p, (list, tuple)) and p and all(_is_number(x) and x >= 0 for x in p) for p in v),
        "a list of preferences, each a list of numbers >= 0", optional, invalid=(0.5, [0.5], [[-1, 2]], [["a"]]))


def preference() -> Rule:
    """One preference: numbers, or ``0.3,0.7`` as a string (checked fully, against the objectives, where it is used:
    :func:`recbole_paragon.preference.as_preference`)."""
    return Rule(lambda v: isinstance(v, str) or _is_number(v) or (isinstance(v, (list, tuple)) and
                                                                  all(_is_number(x) for x in v)),
                "one weight per objective, e.g. [0.3, 0.7] or 0.3,0.7", optional=True, invalid=({"a": 1}, ["a"]))


def _objectives(key: Any) -> int:
    """A mapping key read as a number of objectives (an int, or its digits as JSON keys are); -1 if it is not one."""
    if _is_int(key):
        return key
    return int(key) if isinstance(key, str) and key.isdigit() else -1


def count_by_objectives() -> Rule:
    """A count >= 0 for every number of objectives, or a mapping of numbers of objectives (>= 1) to counts >= 0."""
    def test(value: Any) -> bool:
        if isinstance(value, Mapping):
            return len(value) > 0 and all(_objectives(k) >= 1 and _is_int(v) and v >= 0 for k, v in value.items())
        return _is_int(value) and value >= 0
    return Rule(test, "a count >= 0, or a mapping of numbers of objectives (>= 1) to counts >= 0, e.g. {4: 300}",
                invalid=(-1, 1.5, {}, {0: 3}, {4: -1}, {"four": 3}))


def mapping() -> Rule:
    return Rule(lambda v: isinstance(v, Mapping), "a mapping", invalid=("split", 3))


def files_by_name() -> Rule:
    """A mapping of names to a file path, or to a list of them."""
    def test(value: Any) -> bool:
        return isinstance(value, Mapping) and all(
            isinstance(k, str) and (isinstance(v, str) and v != "" or isinstance(v, (list, tuple)) and
                                    all(isinstance(f, str) and f != "" for f in v)) for k, v in value.items())
    return Rule(test, "a mapping of names to a file (or a list of files)", invalid=("best.yaml", {"SASRec": 3},
                                                                                    {"SASRec": [""]}))


def anything(optional: bool = True) -> Rule:
    return Rule(lambda v: True, "any value", optional)


def index_or_name() -> Rule:
    return Rule(lambda v: (_is_int(v) and v >= 0) or (isinstance(v, str) and v != ""),
                "an objective's index >= 0 in objectives, or its name", invalid=(-1, 1.5, True, ""))


def fraction_or_fractions() -> Rule:
    def test(value: Any) -> bool:
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        return bool(values) and all(_is_number(v) and 0 < v < 1 for v in values) and \
            all(a < b for a, b in zip(values, values[1:]))
    return Rule(test, "a fraction in (0, 1), or an increasing list of them", invalid=(0, 1, [0.5, 0.2], "x"))
