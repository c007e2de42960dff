"""GET /api/v1/drift-incidents: each incident with its change date, rules and resolution."""

import datetime as dt

from mlops.models import DriftIncident, ModelVersion
from tests.api.clients import assert_error, client_for
from tests.api.factories import ModelVersionFactory


def _incidents():
    drifted = ModelVersionFactory(version_number=4, status=ModelVersion.Status.ARCHIVED)
    answer = ModelVersionFactory(version_number=6, status=ModelVersion.Status.CHAMPION)
    resolved = DriftIncident.objects.create(
        champion=drifted,
        change_date=dt.date(2026, 3, 30),
        opened_on=dt.date(2026, 4, 1),
        last_checked_on=dt.date(2026, 4, 6),
        rules=["error_cusum"],
        detection={"drift_pct": 18.2},
        challenger=answer,
        status=DriftIncident.Status.RESOLVED,
        resolution=DriftIncident.Resolution.NEW_CHAMPION,
        resolved_on=dt.date(2026, 4, 6),
    )
    still_open = DriftIncident.objects.create(
        champion=answer,
        segment="department:Grocery",
        change_date=dt.date(2026, 5, 2),
        opened_on=dt.date(2026, 5, 4),
        last_checked_on=dt.date(2026, 5, 4),
        rules=["threshold", "bias_cusum"],
    )
    return resolved, still_open


def test_incidents_are_listed_newest_first_with_what_a_person_decides_on(viewer):
    resolved, still_open = _incidents()

    body = client_for(viewer).get("/api/v1/drift-incidents").json()

    assert [row["id"] for row in body["results"]] == [still_open.pk, resolved.pk]
    newest, oldest = body["results"]
    assert (newest["segment"], newest["status"], newest["rules"]) == (
        "department:Grocery",
        "open",
        ["threshold", "bias_cusum"],
    )
    assert (newest["resolution"], newest["resolved_on"]) == ("", None)
    assert oldest["change_date"] == "2026-03-30" and oldest["opened_on"] == "2026-04-01"
    assert (oldest["champion"], oldest["challenger"]) == ("v4", "v6")
    assert (oldest["resolution"], oldest["resolved_on"]) == ("new_champion", "2026-04-06")
    assert oldest["detection"] == {"drift_pct": 18.2}


def test_incidents_filter_by_status_and_segment(viewer):
    resolved, still_open = _incidents()
    client = client_for(viewer)

    open_ones = client.get("/api/v1/drift-incidents?status=open").json()["results"]
    global_ones = client.get("/api/v1/drift-incidents?segment=global").json()["results"]

    assert [row["id"] for row in open_ones] == [still_open.pk]
    assert [row["id"] for row in global_ones] == [resolved.pk]
    assert_error(client.get("/api/v1/drift-incidents?status=lost"), 400, "validation_error")


def test_incidents_need_a_role(no_role):
    assert_error(client_for(no_role).get("/api/v1/drift-incidents"), 403)
