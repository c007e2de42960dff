import json
from datetime import UTC, datetime

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django_celery_beat.models import CrontabSchedule
from django_tenants.utils import schema_context

from mlops.schedules import JOBS, TenantSchedule, next_run_at, set_crontab, tenant_schedules
from tests.tenancy import PASSWORD


def _user(role: str, username: str | None = None):
    user = get_user_model().objects.create_user(
        username or role, f"{role}@example.com", PASSWORD, is_staff=True
    )
    user.groups.add(Group.objects.get(name=role))
    return user


def _client(username: str, host: str = "acme.testserver") -> Client:
    client = Client(HTTP_HOST=host)
    assert client.login(username=username, password=PASSWORD)
    return client


def test_every_tenant_gets_every_job_in_its_own_time_zone(tenant, other_tenant):
    for each in (tenant, other_tenant):
        schedules = {task.name: task for task in tenant_schedules(tenant=each)}
        assert set(schedules) == {f"{job.key}@{each.schema_name}" for job in JOBS}
        assert {str(t.crontab.timezone) for t in schedules.values()} == {each.time_zone}


def test_daily_jobs_run_at_each_tenants_local_six_oclock(tenant, other_tenant):
    # 04:00 UTC in winter: 05:00 in Berlin (UTC+1), 23:00 the evening before in New York (UTC-5).
    now = datetime(2026, 1, 14, 4, 0, tzinfo=UTC)
    berlin = TenantSchedule.objects.get(name="daily_backtest@acme")
    new_york = TenantSchedule.objects.get(name="daily_backtest@globex")

    assert next_run_at(berlin, now=now).astimezone(UTC) == datetime(2026, 1, 14, 5, 0, tzinfo=UTC)
    assert next_run_at(new_york, now=now).astimezone(UTC) == datetime(
        2026, 1, 14, 11, 0, tzinfo=UTC
    )
    assert next_run_at(berlin, now=now).hour == next_run_at(new_york, now=now).hour == 6


def test_weekly_retrain_is_sunday_two_in_the_morning_local(tenant):
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # a Friday
    retrain = TenantSchedule.objects.get(name="weekly_retrain@acme")
    assert next_run_at(retrain, now=now).isoformat() == "2026-11-29T02:00:00+01:00"


def test_manager_sees_and_edits_only_own_schedules_without_touching_others(tenant):
    _user("ml_manager", "maria")
    client = _client("maria")
    listing = client.get("/admin/mlops/tenantschedule/").content.decode()
    assert "Daily backtest" in listing and "@globex" not in listing

    task = TenantSchedule.objects.get(name="daily_backtest@acme")
    shared_crontab = task.crontab_id
    response = client.post(
        f"/admin/mlops/tenantschedule/{task.pk}/change/",
        {
            "enabled": "",
            "minute": "30",
            "hour": "7",
            "day_of_week": "*",
            "day_of_month": "*",
            "month_of_year": "*",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    task.refresh_from_db()
    assert not task.enabled
    assert (task.crontab.hour, task.crontab.minute, str(task.crontab.timezone)) == (
        "7",
        "30",
        "Europe/Berlin",
    )
    # The crontab row it pointed at (which other tenants in the same zone share) is untouched.
    assert CrontabSchedule.objects.get(pk=shared_crontab).hour == "6"

    globex_task = TenantSchedule.objects.get(name="daily_backtest@globex")
    assert client.get(f"/admin/mlops/tenantschedule/{globex_task.pk}/change/").status_code == 302


def test_viewer_sees_schedules_but_cannot_change_or_run_them(tenant):
    _user("viewer", "victor")
    client = _client("victor")
    task = TenantSchedule.objects.get(name="daily_backtest@acme")
    assert client.get("/admin/mlops/tenantschedule/").status_code == 200
    response = client.post(
        f"/admin/mlops/tenantschedule/{task.pk}/change/",
        {
            "enabled": "",
            "minute": "0",
            "hour": "1",
            "day_of_week": "*",
            "day_of_month": "*",
            "month_of_year": "*",
        },
    )
    assert response.status_code == 403
    assert client.post(f"/admin/mlops/tenantschedule/{task.pk}/run/").status_code == 403
    task.refresh_from_db()
    assert task.enabled and task.crontab.hour == "6"


def _queued_messages() -> list[dict]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    return [json.loads(raw) for raw in client.lrange(settings.CELERY_TASK_DEFAULT_QUEUE, 0, -1)]


def test_run_now_queues_the_job_in_the_tenants_schema(tenant):
    from tests.processes import purge_queue

    purge_queue()
    _user("ml_manager", "maria")
    client = _client("maria")
    task = TenantSchedule.objects.get(name="daily_forecast@acme")
    confirm = client.get(f"/admin/mlops/tenantschedule/{task.pk}/run/")
    assert b"Yes, run it now" in confirm.content
    response = client.post(f"/admin/mlops/tenantschedule/{task.pk}/run/", follow=True)
    assert b"Queued Daily forecast" in response.content
    queued = _queued_messages()
    assert [(m["headers"]["task"], m["headers"]["_schema_name"]) for m in queued] == [
        ("mlops.tasks.daily_forecast", "acme")
    ]
    purge_queue()


def test_run_job_command_queues_for_the_named_tenant(tenant, capsys):
    from tests.processes import purge_queue

    purge_queue()
    with schema_context("public"):
        call_command("run_job", "daily_backtest", "--tenant", "globex")
    assert "Queued daily_backtest for globex" in capsys.readouterr().out
    assert [m["headers"]["_schema_name"] for m in _queued_messages()] == ["globex"]
    purge_queue()


def test_default_jobs_carry_the_schema_as_json_headers_beat_can_read(tenant):
    from django_celery_beat.schedulers import ModelEntry

    for task in tenant_schedules(tenant=tenant):
        entry = ModelEntry(task)
        assert entry.options["headers"]["_schema_name"] == "acme"


def test_migrating_gives_an_existing_tenant_a_job_it_lacks_and_keeps_the_jobs_it_edited(tenant):
    # acme as provisioned before the canary job existed, with a job moved and another disabled.
    TenantSchedule.objects.filter(name="daily_canary_evaluation@acme").delete()
    moved = TenantSchedule.objects.get(name="daily_forecast@acme")
    set_crontab(task=moved, minute="45", hour="4", day_of_week="1-5", time_zone=tenant.time_zone)
    stopped = TenantSchedule.objects.get(name="daily_drift_detection@acme")
    stopped.enabled = False
    stopped.save()
    before = {task.name: task.pk for task in tenant_schedules(tenant=tenant)}

    # What a deploy runs; twice, as every later deploy runs it again.
    for _ in range(2):
        call_command("migrate_schemas", schema_name="acme", executor="standard", verbosity=0)

    schedules = {task.name: task for task in tenant_schedules(tenant=tenant)}
    assert set(schedules) == {f"{job.key}@acme" for job in JOBS}
    canary = schedules["daily_canary_evaluation@acme"]
    assert canary.enabled and canary.task == "mlops.tasks.daily_canary_evaluation"
    assert (canary.crontab.hour, canary.crontab.minute, canary.crontab.day_of_week) == (
        "6",
        "30",
        "*",
    )
    assert str(canary.crontab.timezone) == "Europe/Berlin"
    assert json.loads(canary.headers) == {"_schema_name": "acme"}
    # The rows that were there are the same rows, as the tenant left them.
    assert {name: schedules[name].pk for name in before} == before
    moved = schedules["daily_forecast@acme"]
    assert (moved.crontab.minute, moved.crontab.hour, moved.crontab.day_of_week) == (
        "45",
        "4",
        "1-5",
    )
    assert moved.enabled
    assert not schedules["daily_drift_detection@acme"].enabled
    # The other tenant's jobs are its own business.
    assert TenantSchedule.objects.filter(name__endswith="@globex").count() == len(JOBS)
