"""Every API route, walked from the URL resolver: tenant A's token on tenant B's host gets
401 or 404 and never B's data."""

import re

from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver
from django_tenants.utils import tenant_context

from experiments.models import ModelExperiment
from mlops.models import ModelRetrainingLog, ModelVersion
from tests.api.clients import OTHER_HOST, client_for
from tests.api.factories import ModelVersionFactory, UserFactory, make_alert

SECRET = "GLOBEX-ONLY-7f3a"
METHODS = ("get", "post", "put", "patch", "delete")


def api_routes() -> list[tuple[str, URLPattern]]:
    """(route, pattern) for every endpoint under /api/v1/, found by walking the resolver."""
    found = []

    def walk(patterns, prefix):
        for each in patterns:
            if isinstance(each, URLResolver):
                walk(each.url_patterns, prefix + str(each.pattern))
            else:
                found.append((prefix + str(each.pattern), each))

    (api,) = [
        r for r in get_resolver("config.urls_tenant").url_patterns if str(r.pattern) == "api/v1/"
    ]
    walk(api.url_patterns, "/api/v1/")
    return found


def concrete_path(route: str, ids: dict[str, object]) -> str:
    """The route with its parameters filled with B's objects (a catch-all becomes a path)."""
    route = route.replace("^.*$", "no/such/endpoint")
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids[m.group(1)]), route)


def methods_of(pattern: URLPattern) -> list[str]:
    view = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
    return [m for m in METHODS if view is not None and hasattr(view, m)]


def _globex_data(other_tenant):
    with tenant_context(other_tenant):
        owner = UserFactory(username="globex-manager", role="ml_manager")
        version = ModelVersionFactory(
            version_number=1, status=ModelVersion.Status.CHAMPION, algorithm=SECRET[:32]
        )
        alert = make_alert(title=SECRET, dedup_key=SECRET)
        experiment = ModelExperiment.objects.create(
            name=SECRET, hypothesis=SECRET, experiment_type="algorithm"
        )
        log = ModelRetrainingLog.objects.create(trigger="manual", error=SECRET)
        ids = {
            "alert_id": alert.pk,
            "experiment_id": experiment.pk,
            "log_id": log.pk,
            "version": version.version,
        }
        return owner, ids


def test_tenant_a_token_on_tenant_b_host_never_reaches_b(tenant, other_tenant, manager):
    owner, ids = _globex_data(other_tenant)
    connection.set_tenant(tenant)
    intruder = client_for(manager, host=OTHER_HOST)  # manager and token live in acme
    routes = api_routes()
    assert len(routes) >= 25
    answers = []
    for route, pattern in routes:
        for method in methods_of(pattern):
            path = concrete_path(route, ids)
            response = getattr(intruder, method)(path, {}, format="json")
            answers.append((method.upper(), path, response.status_code))
            assert response.status_code in (401, 404), (method, path, response.content)
            assert SECRET not in response.content.decode(), (method, path)
    # The walk reached the data endpoints, not only the catch-all.
    assert {status for _, _, status in answers} == {401, 404}
    assert sum(status == 401 for _, _, status in answers) >= 25

    # The same calls with B's own token do reach B's data: the check above can fail.
    connection.set_tenant(other_tenant)
    insider = client_for(owner, host=OTHER_HOST)
    alert = insider.get(f"/api/v1/ml-alerts/{ids['alert_id']}")
    assert alert.status_code == 200 and SECRET in alert.content.decode()


def test_session_of_tenant_a_is_not_a_session_on_tenant_b(tenant, other_tenant, manager):
    _globex_data(other_tenant)
    connection.set_tenant(tenant)
    browser = client_for(None)
    browser.force_login(manager)  # a session in acme's session table
    assert browser.get("/api/v1/ml-alerts").status_code == 200
    response = browser.get("/api/v1/ml-alerts", HTTP_HOST=OTHER_HOST)
    assert response.status_code == 401
    assert SECRET not in response.content.decode()
