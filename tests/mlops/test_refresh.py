"""The weekly retrain of a champion's own recipe is a refresh: it replaces the champion unless it
is worse, judged against what the champion served; a broken artifact is refused."""

import datetime as dt

import numpy as np
import pytest

from forecasting.families import ForecastModel
from forecasting.families.base import Forecasts
from mlops.models import DecisionKind, ModelRetrainingLog, ModelVersion, Trigger
from mlops.selectors import get_champion_model
from mlops.services import forecast_next_days, retrain_forecast_model
from mlops.services.data import load_panel
from mlops.services.evaluation import Recipe
from mlops.services.refresh import check_refresh
from mlops.services.registry import load_model
from tenants.selectors import tenant_policy
from tests.mlops.conftest import QUICK_XGBOOST
from tests.mlops.factories import load_sales

Status = ModelVersion.Status


def champion_a_week_ago(sales_frame) -> ModelVersion:
    """The first champion, trained on the sales up to eight days before the last day; then the
    last week's sales arrive, with the daily forecasts it served for them."""
    dates = sales_frame["date"].dt.date
    last = dates.max()
    load_sales(sales_frame[dates <= last - dt.timedelta(days=8)])
    log = retrain_forecast_model(
        trigger=Trigger.MANUAL, algorithm="xgboost", hyperparameters=QUICK_XGBOOST, window_days=120
    )
    assert log.outcome == "champion (first)", log.error
    for offset in range(7, 0, -1):
        day = last - dt.timedelta(days=offset - 1)
        forecast_next_days(day=day)  # served the morning of `day`, from the sales before it
        load_sales(sales_frame[dates == day])
    return log.resulting_version


def test_the_weekly_retrain_of_the_champions_recipe_is_a_refresh_that_replaces_it(sales_frame):
    champion = champion_a_week_ago(sales_frame)

    log = retrain_forecast_model(trigger=Trigger.SCHEDULED)

    assert log.status == ModelRetrainingLog.Status.SUCCEEDED, log.error
    assert (log.decision_kind, log.outcome) == (DecisionKind.REFRESH, "promoted"), log.decision
    refreshed = log.resulting_version
    assert get_champion_model() == refreshed
    assert Recipe.of(refreshed).same_as(Recipe.of(champion))
    assert refreshed.decision_kind == DecisionKind.REFRESH
    evidence = refreshed.transitions.get(to_status=Status.CHAMPION).evidence
    assert evidence["kind"] == "refresh"
    # Judged on what the champion really served that week, stored by the daily forecasts.
    assert evidence["source"] == "stored_forecasts"
    assert evidence["window"]["days"] == 7
    # Every series the champion served on every day of the week (active ones: sold recently).
    assert evidence["n_series"] >= 30 and evidence["n_points"] == evidence["n_series"] * 7
    assert all(evidence["checks"].values())
    retired = ModelVersion.objects.get(pk=champion.pk)
    assert retired.status == Status.ARCHIVED
    assert "Refresh replaces the champion" in retired.transitions.get(to_status="archived").reason


class Scaled(ForecastModel):
    """A fitted model whose forecasts come out multiplied: a broken artifact."""

    algorithm = "xgboost"

    def __init__(self, inner: ForecastModel, factor: float):
        self.inner, self.factor = inner, factor
        self.fitted = True

    @property
    def features(self):
        return self.inner.features

    def predict(self, panel, start, horizon=7):
        forecasts = self.inner.predict(panel, start, horizon)
        return Forecasts(
            stores=forecasts.stores,
            products=forecasts.products,
            dates=forecasts.dates,
            values=forecasts.values * self.factor,
            lower=forecasts.lower * self.factor,
            upper=forecasts.upper * self.factor,
        )

    def _fit_point(self, panel, session=None):  # pragma: no cover - never fitted
        raise NotImplementedError

    def _predict_point(self, *, history, future_promotion, dates):  # pragma: no cover
        raise NotImplementedError


@pytest.mark.parametrize(("factor", "passes"), [(1.0, True), (0.7, False)])
def test_a_refresh_whose_artifact_forecasts_too_little_is_refused(sales_frame, factor, passes):
    champion = champion_a_week_ago(sales_frame)
    last = sales_frame["date"].dt.date.max()
    panel = load_panel(start=last - dt.timedelta(days=200), end=last)
    recipe = Recipe.of(champion)
    fresh = load_model(champion)  # stands in for the new fit: the guards read its forecasts

    check = check_refresh(
        champion=champion,
        recipe=recipe,
        model=Scaled(fresh, factor),
        panel=panel,
        policy=tenant_policy(),
    )

    assert check.passed is passes, check.reason
    if not passes:
        assert check.checks["fits_check_days"] is False
        assert check.guards["check_days_mae"] > check.guards["champion_check_days_mae"]
        assert "does not reproduce the days it was trained on" in check.reason
    assert np.isfinite(check.guards["level_ratio"])
