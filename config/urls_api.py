"""REST API v1 of a tenant (mounted at /api/v1/): paths and shapes of the spec, sections 7-9."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from alerts import apis as alerts
from config.api_auth import AuthTokenApi
from config.api_errors import api_not_found
from experiments import apis as experiments
from forecasting import apis as forecasting
from mlops import apis as mlops
from mlops import explanation_apis as explanations
from mlops import rollout_apis as rollouts
from mlops import series_apis, serving

VERSION = r"(?P<version>v[0-9]{1,9})"

urlpatterns = [
    path("schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema-slash"),
    path("docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs-slash"),
    path("auth/token", AuthTokenApi.as_view(), name="api-auth-token"),
    # Models (spec section 7)
    path("models/health", mlops.ModelHealthApi.as_view(), name="api-models-health"),
    # A version label is v<number>: `models/backtest/promote` is no version's backtest.
    re_path(
        rf"^models/backtest/{VERSION}$",
        mlops.ModelBacktestApi.as_view(),
        name="api-models-backtest",
    ),
    path("models/history", mlops.ModelHistoryApi.as_view(), name="api-models-history"),
    path("models/retrain", mlops.ModelRetrainApi.as_view(), name="api-models-retrain"),
    path(
        "drift-incidents",
        mlops.DriftIncidentListApi.as_view(),
        name="api-drift-incidents",
    ),
    path(
        "models/retraining-log",
        mlops.RetrainingLogListApi.as_view(),
        name="api-retraining-log",
    ),
    path(
        "models/retraining-log/<int:log_id>",
        mlops.RetrainingLogDetailApi.as_view(),
        name="api-retraining-log-detail",
    ),
    re_path(
        rf"^models/{VERSION}/promote$", mlops.ModelPromoteApi.as_view(), name="api-models-promote"
    ),
    re_path(
        rf"^models/{VERSION}/rollback$",
        mlops.ModelRollbackApi.as_view(),
        name="api-models-rollback",
    ),
    re_path(
        rf"^models/{VERSION}/canary$", rollouts.ModelCanaryApi.as_view(), name="api-models-canary"
    ),
    re_path(
        rf"^models/{VERSION}/canary/pause$",
        rollouts.CanaryPauseApi.as_view(),
        name="api-models-canary-pause",
    ),
    re_path(
        rf"^models/{VERSION}/canary/resume$",
        rollouts.CanaryResumeApi.as_view(),
        name="api-models-canary-resume",
    ),
    re_path(
        rf"^models/{VERSION}/canary/abort$",
        rollouts.CanaryAbortApi.as_view(),
        name="api-models-canary-abort",
    ),
    re_path(
        rf"^models/{VERSION}/canary/skip$",
        rollouts.CanarySkipApi.as_view(),
        name="api-models-canary-skip",
    ),
    # ML alerts (spec section 8)
    path("ml-alerts", alerts.MLAlertListApi.as_view(), name="api-ml-alerts"),
    path("ml-alerts/stats", alerts.MLAlertStatsApi.as_view(), name="api-ml-alerts-stats"),
    path("ml-alerts/<int:alert_id>", alerts.MLAlertDetailApi.as_view(), name="api-ml-alert"),
    path(
        "ml-alerts/<int:alert_id>/read", alerts.MLAlertReadApi.as_view(), name="api-ml-alert-read"
    ),
    path(
        "ml-alerts/<int:alert_id>/action",
        alerts.MLAlertActionApi.as_view(),
        name="api-ml-alert-action",
    ),
    # Experiments (spec section 9)
    path("experiments", experiments.ExperimentListApi.as_view(), name="api-experiments"),
    path(
        "experiments/<int:experiment_id>",
        experiments.ExperimentDetailApi.as_view(),
        name="api-experiment",
    ),
    path(
        "experiments/<int:experiment_id>/approve",
        experiments.ExperimentApproveApi.as_view(),
        name="api-experiment-approve",
    ),
    path(
        "experiments/<int:experiment_id>/reject",
        experiments.ExperimentRejectApi.as_view(),
        name="api-experiment-reject",
    ),
    path(
        "experiments/<int:experiment_id>/start",
        experiments.ExperimentStartApi.as_view(),
        name="api-experiment-start",
    ),
    path(
        "experiments/<int:experiment_id>/shadow-testing",
        experiments.ExperimentShadowTestingApi.as_view(),
        name="api-experiment-shadow-testing",
    ),
    path(
        "experiments/<int:experiment_id>/complete",
        experiments.ExperimentCompleteApi.as_view(),
        name="api-experiment-complete",
    ),
    path(
        "experiments/<int:experiment_id>/results",
        experiments.ExperimentResultsApi.as_view(),
        name="api-experiment-results",
    ),
    # Forecasts and data
    path("forecasts", serving.ForecastApi.as_view(), name="api-forecasts"),
    path("series/history", series_apis.SeriesHistoryApi.as_view(), name="api-series-history"),
    path(
        "forecasts/explain", explanations.ForecastExplainApi.as_view(), name="api-forecasts-explain"
    ),
    path("sales/import", forecasting.SalesImportApi.as_view(), name="api-sales-import"),
    path("promotions", forecasting.PlannedPromotionListApi.as_view(), name="api-promotions"),
    path(
        "promotions/import",
        forecasting.PromotionCalendarImportApi.as_view(),
        name="api-promotions-import",
    ),
    # Anything else under /api/v1/ answers 404 in the error shape (not an HTML page), newlines
    # (`%0A` in a path) included, which `.` would not match.
    re_path(r"^[\s\S]*$", api_not_found, name="api-not-found"),
]
