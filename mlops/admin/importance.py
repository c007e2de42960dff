"""The review page's feature importance: bars for the version and the champion it is compared
with, and the table of how each feature's share moved between them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlops.admin.charts import RankedBarChart, ranked_bar_chart
from mlops.admin.review import comparison_champion
from mlops.models import ModelVersion

SPACE_LABELS = {"identity": "units", "log": "log units"}


@dataclass(frozen=True)
class ShareRow:
    feature: str
    champion_share: str
    challenger_share: str
    change: str
    change_points: float


def _permutation(version: ModelVersion) -> dict[str, Any] | None:
    return (version.importance or {}).get("permutation")


def _contributions(version: ModelVersion) -> dict[str, Any] | None:
    return (version.importance or {}).get("mean_abs_contribution")


def importance_side(version: ModelVersion, *, role: str, css_class: str) -> dict[str, Any]:
    """One version's importance charts (permutation importance for every family, mean
    |contribution| where the family has exact contributions) and how they were measured."""
    permutation = _permutation(version)
    contributions = _contributions(version)
    side: dict[str, Any] = {
        "version": version,
        "role": role,
        "measured": permutation is not None,
        "error": (version.importance or {}).get("error"),
        "charts": [],
    }
    if permutation is not None:
        side.update(window=permutation["window"], permutation=permutation)
        side["charts"].append(
            _chart(
                title=f"{version.version} ({role}): permutation importance",
                x_label="MAE increase when shuffled (units per series-day)",
                unit="",
                rows=[(row["feature"], row["importance"]) for row in permutation["features"]],
                css_class=css_class,
                kind="permutation",
            )
        )
    if contributions is not None:
        space = SPACE_LABELS.get(contributions["space"], contributions["space"])
        side["contributions"] = contributions
        side["charts"].append(
            _chart(
                title=f"{version.version} ({role}): mean |contribution|",
                x_label=f"Mean |TreeSHAP contribution| ({space})",
                unit="",
                rows=[
                    (row["feature"], row["mean_abs_contribution"])
                    for row in contributions["features"]
                ],
                css_class=css_class,
                kind="contribution",
            )
        )
    return side


def _chart(*, kind: str, **arguments: Any) -> dict[str, Any]:
    chart: RankedBarChart = ranked_bar_chart(**arguments)
    return {"kind": kind, "chart": chart}


def _change_words(points: float) -> str:
    """A change of share in words, never a bare sign."""
    shown = round(abs(points), 1)
    if shown == 0:
        return "no change"
    return f"{shown:.1f} points {'more' if points > 0 else 'less'}"


def share_rows(*, champion: dict[str, Any], challenger: dict[str, Any]) -> list[ShareRow]:
    """Each feature's share of the permutation importance for the champion and the
    challenger (0 where a family lacks the feature), largest share on either side first."""
    champion_shares = {row["feature"]: row["share_pct"] for row in champion["features"]}
    challenger_shares = {row["feature"]: row["share_pct"] for row in challenger["features"]}
    features = sorted(
        set(champion_shares) | set(challenger_shares),
        key=lambda name: (
            -max(champion_shares.get(name, 0.0), challenger_shares.get(name, 0.0)),
            name,
        ),
    )
    rows = []
    for name in features:
        before, after = champion_shares.get(name, 0.0), challenger_shares.get(name, 0.0)
        rows.append(
            ShareRow(
                feature=name,
                champion_share=f"{before:.1f}%" if name in champion_shares else "not used",
                challenger_share=f"{after:.1f}%" if name in challenger_shares else "not used",
                change=_change_words(after - before),
                change_points=after - before,
            )
        )
    return rows


def importance_section(version: ModelVersion) -> dict[str, Any]:
    """Both sides' importance and, when both were measured, the difference table."""
    champion = comparison_champion(version)
    this = importance_side(version, role="this version", css_class="this-version")
    other = (
        importance_side(champion, role="champion", css_class="champion")
        if champion is not None
        else None
    )
    rows = []
    if other is not None and this["measured"] and other["measured"]:
        rows = share_rows(champion=other["permutation"], challenger=this["permutation"])
    return {
        "this": this,
        "champion": other,
        "sides": [this] if other is None else [this, other],
        "differences": rows,
    }
