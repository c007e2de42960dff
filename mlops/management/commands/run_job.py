"""manage.py run_job JOB --tenant SLUG: run one scheduled job for one tenant now."""

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import schema_context

from config.console import Console
from mlops.schedules import JOBS_BY_KEY, run_job_now
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Queue (or, with --sync, run here) one of the scheduled jobs for a tenant."

    def add_arguments(self, parser):
        parser.add_argument("job", choices=sorted(JOBS_BY_KEY))
        parser.add_argument("--tenant", required=True, help="Tenant slug")
        parser.add_argument(
            "--sync", action="store_true", help="Run in this process instead of on a worker"
        )

    def handle(self, *args, job, tenant, sync, **options):
        try:
            tenant_obj = Tenant.objects.exclude(schema_name="public").get(slug=tenant)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {tenant!r}") from None
        spec = JOBS_BY_KEY[job]
        if not sync:
            task_id = run_job_now(job=spec, tenant=tenant_obj)
            self.stdout.write(f"Queued {job} for {tenant} (task {task_id}).")
            return
        from config.celery import app

        app.loader.import_default_modules()
        console = Console(self.stdout)
        with schema_context(tenant_obj.schema_name), console.step(f"{job} for {tenant}"):
            result = app.tasks[spec.task].apply(throw=True)
        console.say(f"    {result.result!r}")
