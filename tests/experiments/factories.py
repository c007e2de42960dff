"""Factories for experiment tests: experiments in any state and shadow predictions with actuals."""

import datetime as dt

import factory

from experiments.models import ModelExperiment
from mlops.models import ShadowPrediction


class ExperimentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelExperiment

    name = factory.Sequence(lambda n: f"Experiment {n}")
    hypothesis = "A dedicated Electronics model forecasts Electronics better."
    experiment_type = ModelExperiment.ExperimentType.SEGMENTATION
    configuration = factory.LazyFunction(lambda: {"segments": ["Electronics", "Grocery"]})
    success_metric = ModelExperiment.Metric.MAE
    expected_improvement_pct = 10.0
    status = ModelExperiment.Status.PROPOSED


def shadow_rows(
    *,
    version,
    served_by,
    store,
    product,
    first_day: dt.date,
    actual: list[float],
    experimental: list[float],
    served: list[float],
) -> list[ShadowPrediction]:
    """One shadow prediction with its actual per day from `first_day`: `version` answered
    `experimental`, `served_by` answered `served`."""
    return ShadowPrediction.objects.bulk_create(
        ShadowPrediction(
            key=f"daily:{first_day + dt.timedelta(days=index)}",
            store=store,
            product=product,
            target_date=first_day + dt.timedelta(days=index),
            champion_version=served_by,
            champion_value=served[index],
            challenger_version=version,
            challenger_value=experimental[index],
            actual=actual[index],
        )
        for index in range(len(actual))
    )
