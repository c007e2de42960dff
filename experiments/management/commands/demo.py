"""manage.py demo: provision the `demo` tenant, generate its sales and play the three scenarios."""

import logging
import os
import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from config.console import Console
from experiments.demo import DEFAULT_SIZE, QUICK_SIZE, play
from tenants.models import Tenant
from tenants.services import provision_tenant

DEMO_SLUG = "demo"
DEMO_PASSWORD = os.environ.get("DEMO_ADMIN_PASSWORD", "arena-demo")


class Command(BaseCommand):
    help = "Prepare the demo tenant and play the scenarios (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--quick", action="store_true", help="120 series x 420 days instead of 1,000 x 730"
        )
        parser.add_argument(
            "--reset", action="store_true", help="Delete the demo tenant and start afresh"
        )
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args, quick, reset, seed, **options):
        # The narration says what happens; the services' own log lines would interleave with it.
        for name in ("mlops", "experiments", "forecasting", "alerts"):
            logging.getLogger(name).setLevel(logging.ERROR)
        narrator = Console(self.stdout)
        if reset:
            self._reset(narrator)
        with narrator.step("provisioning the demo tenant (schema, roles, schedules)"):
            result = provision_tenant(
                slug=DEMO_SLUG,
                name="Demo Retail",
                time_zone="Europe/London",
                admin_password=DEMO_PASSWORD,
            )
        with tenant_context(result.tenant):
            from mlops.models import ModelVersion

            if ModelVersion.objects.exists():
                narrator.say(
                    "The demo tenant already has its data and models; nothing is added "
                    "(run `make demo DEMO_ARGS=--reset` to start afresh)."
                )
            else:
                play(
                    size=QUICK_SIZE if quick else DEFAULT_SIZE,
                    password=DEMO_PASSWORD,
                    narrator=narrator,
                    seed=seed,
                )
            self._where_to_click(narrator, result.domain)
        narrator.say(f"\nThe demo took {narrator.elapsed():.0f}s.")

    def _reset(self, narrator: Console) -> None:
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if tenant is None:
            return
        with narrator.step("deleting the demo tenant, its schema, schedules and files"):
            from django_celery_beat.models import PeriodicTask

            PeriodicTask.objects.filter(name__endswith=f"@{tenant.schema_name}").delete()
            tenant.delete(force_drop=True)
            media = Path(settings.MEDIA_ROOT) / DEMO_SLUG
            shutil.rmtree(media, ignore_errors=True)

    def _where_to_click(self, narrator: Console, domain: str) -> None:
        from alerts.models import MLAlert
        from mlops.selectors import get_challenger_model, get_champion_model

        base = f"http://{domain}:{settings.SITE_PORT}"
        champion, challenger = get_champion_model(), get_challenger_model()
        unread = MLAlert.objects.filter(status=MLAlert.Status.UNREAD).count()
        narrator.heading("Where to look")
        narrator.say(f"  Admin home      {base}/admin/")
        narrator.say(
            f"  Log in as       admin / {DEMO_PASSWORD}   (or maria, dan, vera — same password)"
        )
        if champion:
            narrator.say(f"  Champion        {champion.version} ({champion.algorithm})")
        if challenger:
            evaluation = challenger.last_evaluation or {}
            verdict = (
                "the evidence recommends it: review and promote"
                if evaluation.get("promote") and evaluation.get("ready", True)
                else "the evidence does not recommend it yet: review its numbers"
            )
            narrator.say(
                f"  Challenger      {challenger.version} — {verdict}: "
                f"{base}/admin/mlops/modelversion/{challenger.pk}/change/"
            )
        narrator.say(f"  Alert inbox     {base}/admin/alerts/mlalert/  ({unread} unread)")
        narrator.say(f"  Experiments     {base}/admin/experiments/modelexperiment/")
        narrator.say(f"  Schedules       {base}/admin/mlops/tenantschedule/")
        narrator.say(f"  API docs        {base}/api/v1/docs")
