"""How a drift incident reads: the numbers kept with it, its headline, and its alert's text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forecasting import metrics

if TYPE_CHECKING:
    from mlops.models import DriftIncident, ModelVersion
    from mlops.services.drift import DriftResult


def incident_numbers(result: DriftResult, champion: ModelVersion) -> dict[str, Any]:
    def rounded(value: float | None, digits: int = 4) -> float | None:
        return None if value is None else round(float(value), digits)

    return {
        "baseline_mae": rounded(result.baseline_mae),
        "baseline_source": result.baseline_source,
        "recent_mae": rounded(result.recent_mae),
        "drift_pct": rounded(result.drift_pct, 2),
        "threshold_pct": result.threshold_pct,
        "champion_version": champion.version,
        "champion_id": champion.pk,
        "rules": ", ".join(result.rules),
        "error_cusum": rounded(result.error_cusum),
        "error_cusum_threshold": rounded(result.error_cusum_threshold),
        "bias_cusum": rounded(result.bias_cusum),
        "bias_cusum_threshold": rounded(result.bias_cusum_threshold),
        "reference_bias_pct": rounded(result.reference_bias, 2),
        "recent_bias_pct": rounded(result.recent_bias, 2),
        "as_of": result.as_of.isoformat() if result.as_of else None,
        "change_date": result.change_date.isoformat() if result.change_date else None,
        "recent_days": result.recent_days,
    }


def _signed_share(value: float | None) -> str:
    if value is None:
        return "n/a"
    side = "below" if value < 0 else "above"
    return f"{abs(value):.1f}% {side} demand"


def _why(result: DriftResult) -> list[str]:
    """Each rule that fired, in words."""
    change = metrics.better_or_worse(None if result.drift_pct is None else -result.drift_pct)
    sentences = {
        "threshold": (
            f"its MAE over the last {result.recent_days} day(s) is {result.recent_mae or 0:.3f} "
            f"against a baseline of {result.baseline_mae or 0:.3f} ({change}; the tenant calls "
            f"drift beyond {result.threshold_pct:g}% worse)"
        ),
        "error_cusum": (
            "its error per unit forecast has stayed above its first weeks' level for long enough "
            f"(error CUSUM {result.error_cusum or 0:.3f} over {result.error_cusum_threshold or 0:.3f})"
        ),
        "bias_cusum": (
            f"it has been {'under' if result.bias_direction == 'up' else 'over'}-forecasting "
            f"day after day: its forecasts ran {_signed_share(result.recent_bias)} over the last "
            f"{result.recent_days} day(s), against {_signed_share(result.reference_bias)} in its "
            f"first weeks in service (tracking signal {result.bias_cusum or 0:.3f} over "
            f"{result.bias_cusum_threshold or 0:.3f})"
        ),
    }
    return [sentences[rule] for rule in result.rules]


def incident_headline(numbers: dict[str, Any]) -> str:
    """What the rules saw, in a few words: the MAE when the threshold rule fired, else the
    bias the tracking signal followed (now and in the champion's first weeks), else the error
    CUSUM."""
    rules = numbers.get("rules") or ""
    if "threshold" in rules and numbers.get("drift_pct") is not None:
        return f"MAE {metrics.better_or_worse(-numbers['drift_pct'])} than its baseline"
    if "bias_cusum" in rules and numbers.get("recent_bias_pct") is not None:
        # The tracking signal follows the bias's move from its first weeks' level: a bias of
        # 0.9% reads as nothing without the 3.5% the other way it moved from.
        headline = f"forecasts run {_signed_share(numbers['recent_bias_pct'])}"
        if numbers.get("reference_bias_pct") is None:
            return headline
        return f"{headline}, against {_signed_share(numbers['reference_bias_pct'])} at first"
    return "error per unit forecast above its first weeks' level"


def drift_alert_text(
    *, incident: DriftIncident, result: DriftResult | None, next_step: str
) -> tuple[str, str]:
    """The title and message of an incident's alert."""
    numbers = incident.latest or incident.detection
    title = (
        f"Model drift detected — {incident.where} {incident.champion.version}: "
        f"{incident_headline(numbers)}"
    )
    found_in = (incident.detection or {}).get("champion_version")
    refreshed = (
        f" (refreshed from {found_in}, in which the drift was found: the rules read the forecasts "
        "its recipe served, against the baseline it began with)"
        if found_in and found_in != incident.champion.version
        else ""
    )
    lines = [
        f"Champion {incident.champion.version} of {incident.where}{refreshed} no longer fits the "
        f"sales: drift since {incident.change_date} (incident #{incident.pk}, found on "
        f"{incident.opened_on})."
    ]
    if result is not None and result.rules:
        lines.append("As of " + str(result.as_of) + ": " + "; ".join(_why(result)) + ".")
    if incident.root_cause:
        from mlops.services.rootcause import root_cause_summary

        lines.append(root_cause_summary(incident.root_cause))
    lines.append(next_step)
    return title[:300], "\n\n".join(lines)
