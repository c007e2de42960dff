"""What each model family's hyperparameters may be (type and range), and the check of a
recipe's hyperparameters against them, naming the bad key.

A family declares `hyperparameter_specs` beside its defaults; a default without a spec is only
checked to be a plain JSON value (a family that declares none still gets its names checked).
Requests are checked when they arrive (API, admin, experiment configurations), so that nothing
queues a retrain that can only fail later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forecasting.families.base import ForecastModel

JSON_SCALARS = (str, int, float, bool, type(None))


class HyperparameterError(ValueError):
    """A hyperparameter the family does not have, or a value it does not accept; `key` names it."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True)
class Spec:
    """One hyperparameter: `kind` int, float, str or bool; a range for numbers (inclusive
    unless `above` says the minimum itself is excluded); or the `choices` for text."""

    kind: type
    minimum: float | None = None
    maximum: float | None = None
    above: bool = False
    choices: tuple[str, ...] = ()

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value`, or None when it is acceptable."""
        if self.kind is bool:
            return None if isinstance(value, bool) else "give true or false."
        if self.kind is str:
            if not isinstance(value, str):
                return f"give one of {', '.join(self.choices)}." if self.choices else "give text."
            if self.choices and value not in self.choices:
                return f"{value!r} is not one of {', '.join(self.choices)}."
            return None
        return self._number_problem(value)

    def _number_problem(self, value: Any) -> str | None:
        whole = self.kind is int
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number or (whole and not isinstance(value, int)) or not math.isfinite(value):
            return f"give {'a whole number' if whole else 'a number'} {self._range()}."
        too_low = self.minimum is not None and (
            value <= self.minimum if self.above else value < self.minimum
        )
        too_high = self.maximum is not None and value > self.maximum
        if too_low or too_high:
            return f"{value!r} is out of range; give a value {self._range()}."
        return None

    def _range(self) -> str:
        low, high = _shown(self.minimum), _shown(self.maximum)
        if low and high:
            return f"{'above' if self.above else 'from'} {low} to {high}"
        if low:
            return f"above {low}" if self.above else f"of at least {low}"
        return f"of at most {high}" if high else ""


def _shown(bound: float | None) -> str:
    if bound is None:
        return ""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def hyperparameter_problems(family: type[ForecastModel], values: Any) -> dict[str, str]:
    """Each bad key of `values` with what is wrong with it (empty: they are all acceptable)."""
    if not isinstance(values, dict):
        return {"hyperparameters": "give an object of name: value."}
    allowed = {**family.common_hyperparameters, **family.default_hyperparameters}
    specs = family.specs()
    problems: dict[str, str] = {}
    for key, value in values.items():
        if key not in allowed:
            problems[str(key)] = (
                f"{family.algorithm} has no such hyperparameter; known: {', '.join(sorted(allowed))}."
            )
        elif key in specs:
            problem = specs[key].problem(value)
            if problem:
                problems[key] = problem
        elif not isinstance(value, JSON_SCALARS):
            problems[key] = "give a single value (not a list or an object)."
    return problems


def check_hyperparameters(family: type[ForecastModel], values: Any) -> None:
    """Raise HyperparameterError for the first bad key of `values`."""
    for key, message in hyperparameter_problems(family, values).items():
        raise HyperparameterError(key, message)
