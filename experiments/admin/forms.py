"""The experiment admin's forms: a proposal with its configuration as plain fields, a decision."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from experiments import services
from experiments.models import ModelExperiment
from forecasting.families import FAMILIES
from forecasting.models import Product
from mlops.models import DEFAULT_MODEL_NAME


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


class ProposeForm(forms.Form):
    """A proposal with its configuration as plain fields (only those the type uses are kept)."""

    name = forms.CharField(max_length=200)
    hypothesis = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 70}))
    experiment_type = forms.ChoiceField(choices=ModelExperiment.ExperimentType.choices)
    model_name = forms.CharField(max_length=64, initial=DEFAULT_MODEL_NAME)
    success_metric = forms.ChoiceField(
        choices=ModelExperiment.Metric.choices, initial=ModelExperiment.Metric.MAE
    )
    expected_improvement_pct = forms.FloatField(
        initial=5.0, min_value=0, label="Expected improvement (%)"
    )
    algorithm = forms.ChoiceField(
        required=False,
        help_text="Algorithm, hyperparameters, segmentation and feature experiments; blank: "
        "the champion's.",
    )
    hyperparameters = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 40, "placeholder": "max_depth = 6"}),
        help_text="One per line: name = value.",
    )
    segments = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Segmentation: one model per chosen department.",
    )
    window_days = forms.IntegerField(
        required=False, help_text="Training window: days of sales to train on."
    )
    features = forms.CharField(
        required=False, help_text="Feature engineering: feature names, separated by commas."
    )
    CONFIGURATION_FIELDS = ("algorithm", "hyperparameters", "segments", "window_days", "features")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["algorithm"].choices = [("", "—"), *((name, name) for name in sorted(FAMILIES))]
        departments = Product.objects.order_by("department").values_list("department", flat=True)
        self.fields["segments"].choices = [(name, name) for name in departments.distinct()]

    def clean_hyperparameters(self) -> dict[str, Any]:
        parsed = {}
        for number, line in enumerate(self.cleaned_data["hyperparameters"].splitlines(), 1):
            if not line.strip():
                continue
            name, equals, value = line.partition("=")
            if not equals or not name.strip():
                raise forms.ValidationError(f"Line {number}: write name = value.")
            parsed[name.strip()] = _parse_value(value.strip())
        return parsed

    def configuration(self) -> dict[str, Any]:
        """The configuration keys the chosen type takes, from the fields that were filled in."""
        data = self.cleaned_data
        given = {
            "algorithm": data.get("algorithm") or None,
            "hyperparameters": data.get("hyperparameters") or None,
            "segments": list(data.get("segments") or []) or None,
            "window_days": data.get("window_days"),
            "features": [f.strip() for f in (data.get("features") or "").split(",") if f.strip()]
            or None,
        }
        accepted = services.CONFIGURATION_KEYS.get(data["experiment_type"], ())
        return {key: value for key, value in given.items() if key in accepted and value is not None}


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=ModelExperiment.Decision.choices, widget=forms.RadioSelect)
    rationale = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 70}))
    adopted_versions = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Partial adopt: the versions to promote (the others are archived).",
    )
    override_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 70}),
        help_text="Only to adopt a version that does not pass the gate (an override, managers "
        "only): say why.",
    )

    def __init__(self, *args, experiment: ModelExperiment, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["adopted_versions"].choices = [
            (str(version.pk), f"{version.version} ({version.segment})")
            for version in experiment.model_versions.order_by("segment", "pk")
        ]
