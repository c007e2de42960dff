"""What a family's forecast of one day reads, feature by feature, and exact explanations of it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

# How a model's raw output becomes units: "identity" (it is units) or "log" (exp of it is).
IDENTITY_LINK = "identity"
LOG_LINK = "log"


@dataclass(frozen=True, eq=False)
class FeatureInputs:
    """A family's inputs to its forecast of the first target day, one row per forecast: an
    array per feature in `columns` (first axis: rows; a feature may span several numbers, as
    a series' history does), and in `context` the per-row inputs no feature names (a row's
    scale, its demand class), which stay with their row when a feature is shuffled."""

    columns: dict[str, np.ndarray]
    context: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        first = next(iter(self.columns.values()), None)
        return 0 if first is None else len(first)

    def with_column(self, name: str, values: np.ndarray) -> FeatureInputs:
        """The same rows with one feature's values replaced."""
        if name not in self.columns:
            raise KeyError(f"no feature {name!r}; features: {', '.join(self.columns)}")
        return replace(self, columns={**self.columns, name: values})

    def take(self, rows: np.ndarray) -> FeatureInputs:
        """Some rows, by integer index or boolean mask."""
        return FeatureInputs(
            columns={name: values[rows] for name, values in self.columns.items()},
            context={name: values[rows] for name, values in self.context.items()},
        )

    @classmethod
    def concat(cls, parts: list[FeatureInputs]) -> FeatureInputs:
        """The rows of every part, in order (the parts have the same features)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        return cls(
            columns={
                name: np.concatenate([part.columns[name] for part in parts])
                for name in parts[0].columns
            },
            context={
                name: np.concatenate([part.context[name] for part in parts])
                for name in parts[0].context
            },
        )


@dataclass(frozen=True, eq=False)
class ForecastContributions:
    """Exact per-feature contributions to the forecasts of one target day, one row per series.

    In the model's output space: `base_value + contributions.sum(axis=1)` is the model's raw
    output; with a log link the forecast is exp of it. The forecast served is then never
    below zero, and zero on a day the stores close (`closed`): `forecast` is that value, as
    `ForecastModel.predict` gives it.
    """

    features: list[str]
    values: np.ndarray  # feature values, [n_series, n_features]
    contributions: np.ndarray  # [n_series, n_features]
    base_value: np.ndarray  # [n_series]
    link: str
    closed: bool
    forecast: np.ndarray  # [n_series]

    @property
    def model_output(self) -> np.ndarray:
        return self.base_value.astype(np.float64) + self.contributions.astype(np.float64).sum(
            axis=1
        )

    @property
    def units(self) -> np.ndarray:
        """The model's output in units, before the floor at zero and closures."""
        output = self.model_output
        return np.exp(output) if self.link == LOG_LINK else output
