"""A drift incident's page: its champion's daily T-1 MAE and bias, each drift CUSUM against its
threshold with the change date marked, the versions and comparison it leads to, and its
alert's decision."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.urls import reverse

from alerts.admin import decision_context
from forecasting.metrics import better_or_worse
from mlops.admin.charts import Series
from mlops.admin.time_charts import DayMarks, Marker, Rule, TimeChart, time_chart
from mlops.drift_selectors import IncidentTimeline, incident_timeline
from mlops.models import DriftIncident, ModelVersion


def _rules(*pairs: tuple[str, str, float | None]) -> tuple[Rule, ...]:
    return tuple(Rule(label, css, value) for label, css, value in pairs if value is not None)


def drift_charts(incident: DriftIncident, timeline: IncidentTimeline) -> list[TimeChart]:
    """Four charts on the same days: the daily MAE and its error CUSUM, the daily bias and its
    two-sided CUSUM, each CUSUM against its threshold and every chart marking the change date."""
    if not timeline.days:
        return []
    first = timeline.days[0].day
    days = [first + dt.timedelta(days=n) for n in range((timeline.as_of - first).days + 1)]
    change = (Marker(f"change {incident.change_date:%b %d}", "change-date", incident.change_date),)
    reference = (
        DayMarks(
            "reference day",
            "reference-day",
            [(d.day, f"{d.day}: sets the in-control level") for d in timeline.days if d.reference],
        ),
    )
    monitored = timeline.monitored
    common: dict[str, Any] = {"days": days, "markers": change, "width": 640, "height": 300}
    return [
        time_chart(
            title="Daily T-1 MAE of the champion",
            y_label="MAE (units per series-day)",
            unit=" units",
            series=[Series("MAE", "drift-mae", [(d.day, d.mae) for d in timeline.days])],
            rules=_rules(
                ("baseline", "baseline", timeline.baseline_mae),
                (
                    f"threshold rule: {timeline.threshold_pct:g}% worse",
                    "threshold",
                    timeline.threshold_mae,
                ),
            ),
            day_marks=reference,
            **common,
        ),
        time_chart(
            title="Error CUSUM: more error per unit forecast than the reference days",
            y_label="CUSUM (log error ratio)",
            unit="",
            series=[
                Series(
                    "upper (more error)", "cusum-up", [(d.day, d.error_cusum) for d in monitored]
                )
            ],
            rules=_rules(("threshold", "threshold", timeline.error_threshold)),
            **common,
        ),
        time_chart(
            title="Daily T-1 bias of the champion",
            y_label="Bias (% of demand, + over-forecast)",
            unit="%",
            series=[Series("bias", "drift-bias", [(d.day, d.bias_pct) for d in timeline.days])],
            rules=_rules(("reference level", "baseline", timeline.reference_bias_pct)),
            day_marks=reference,
            **common,
        ),
        time_chart(
            title="Bias CUSUM (tracking signal): both directions",
            y_label="CUSUM (share of demand)",
            unit="",
            series=[
                Series(
                    "upper (under-forecast)", "cusum-up", [(d.day, d.bias_up) for d in monitored]
                ),
                Series(
                    "lower (over-forecast)", "cusum-down", [(d.day, d.bias_down) for d in monitored]
                ),
            ],
            rules=_rules(("threshold", "threshold", timeline.bias_threshold)),
            **common,
        ),
    ]


def _review_url(version: ModelVersion) -> str:
    return reverse("admin:mlops_modelversion_change", args=[version.pk])


def comparison_summary(incident: DriftIncident, challenger: ModelVersion) -> str:
    """The challenger's latest verdict against the drifted champion, if it was on this
    incident's days after the change."""
    evaluation = challenger.last_evaluation or {}
    if evaluation.get("incident_id") != incident.pk:
        return f"not judged on the days after {incident.change_date} yet"
    days = (evaluation.get("window") or {}).get("days", 0)
    improvement = (evaluation.get("improvement") or {}).get("mae_pct")
    confidence = (evaluation.get("test") or {}).get("confidence")
    if improvement is None:
        return f"{days} day(s) after the change so far, no verdict yet"
    verdict = "recommends it" if evaluation.get("promote") else "does not recommend it"
    sure = f", confidence {confidence:.3f}" if isinstance(confidence, int | float) else ""
    return (
        f"on {days} day(s) after the change its MAE is {better_or_worse(improvement)} than the "
        f"champion's{sure}; the evidence {verdict}"
    )


def incident_links(incident: DriftIncident) -> list[dict[str, str]]:
    """Where to go from the incident: its champion, the challenger trained for it and that
    challenger's comparison on the days after the change, its alert and its retrain."""
    links = [
        {
            "key": "champion",
            "label": "Champion",
            "url": _review_url(incident.champion),
            "text": f"{incident.champion.version} ({incident.champion.get_status_display().lower()})",
        }
    ]
    challenger = incident.challenger
    if challenger is not None:
        links += [
            {
                "key": "challenger",
                "label": "Challenger trained for it",
                "url": _review_url(challenger),
                "text": f"{challenger.version} ({challenger.get_status_display().lower()})",
            },
            {
                "key": "comparison",
                "label": "Comparison after the change",
                "url": f"{_review_url(challenger)}#decision",
                "text": f"{challenger.version} against {incident.champion.version}: "
                f"{comparison_summary(incident, challenger)}",
            },
        ]
    if incident.alert_id is not None:
        links.append(
            {
                "key": "alert",
                "label": "Alert",
                "url": reverse("admin:alerts_mlalert_change", args=[incident.alert_id]),
                "text": incident.alert.title,
            }
        )
    if incident.retrain_log_id is not None:
        links.append(
            {
                "key": "retrain",
                "label": "Emergency retrain",
                "url": reverse(
                    "admin:mlops_modelretraininglog_change", args=[incident.retrain_log_id]
                ),
                "text": f"#{incident.retrain_log_id} ({incident.retrain_log.get_status_display()})",
            }
        )
    return links


def drift_page(incident: DriftIncident, request) -> dict[str, Any]:
    """Everything the incident's page adds above its recorded numbers."""
    timeline = incident_timeline(incident)
    return {
        "timeline": timeline,
        "charts": drift_charts(incident, timeline),
        "links": incident_links(incident),
        "decision": decision_context(incident.alert, request.user, next_url=request.path)
        if incident.alert is not None
        else None,
    }
