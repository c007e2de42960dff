"""Tenant and Domain: the public-schema records that route a host to a retailer's schema."""

import zoneinfo

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

slug_validator = RegexValidator(
    r"^[a-z][a-z0-9]{1,39}$",
    "Use 2-40 lowercase letters and digits, starting with a letter (it names the schema and host).",
)


def validate_country(value: str) -> None:
    import holidays

    if value and value not in holidays.list_supported_countries():
        raise ValidationError(
            f"{value!r} is not a country code the holidays package knows (e.g. GB)."
        )


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin).")


class Tenant(TenantMixin):
    class DismissedChallenger(models.TextChoices):
        KEEP = "keep", "Keep it as challenger"
        ARCHIVE = "archive", "Archive it"

    name = models.CharField(max_length=200)
    slug = models.CharField(max_length=40, unique=True, validators=[slug_validator])
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    # Holidays reach the forecasts as known inputs (holiday flag, days to and from one).
    country = models.CharField(
        max_length=3,
        blank=True,
        validators=[validate_country],
        help_text="ISO 3166 code of the stores' country, for holidays (blank: none).",
    )
    subdivision = models.CharField(
        max_length=10, blank=True, help_text="Its subdivision for regional holidays (e.g. ENG, BY)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # Model-ops policy, editable per tenant in the platform admin.
    promotion_min_improvement_pct = models.FloatField(
        default=5.0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="A candidate must beat the champion's MAE and MAPE by at least this many percent.",
    )
    promotion_min_confidence = models.FloatField(
        default=0.95,
        validators=[MinValueValidator(0.5), MaxValueValidator(0.9999)],
        help_text="Confidence the paired test over series must reach before a promotion.",
    )
    drift_threshold_pct = models.FloatField(
        default=15.0,
        validators=[MinValueValidator(1), MaxValueValidator(500)],
        help_text="Drift when recent MAE is worse than the baseline by more than this many percent.",
    )
    overstock_tolerance = models.FloatField(
        default=1.2,
        validators=[MinValueValidator(1.0), MaxValueValidator(10.0)],
        help_text="A forecast overstocks when it exceeds actual demand by this factor (and by >= 1 unit).",
    )
    dismissed_challenger = models.CharField(
        max_length=10,
        choices=DismissedChallenger.choices,
        default=DismissedChallenger.KEEP,
        help_text="What dismissing a drift or promotion alert does to its challenger.",
    )
    retrain_period_days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(90)],
        help_text="The weekly retrain refreshes a champion once it is this many days old, or "
        "would be by the job's next run.",
    )
    refresh_margin_pct = models.FloatField(
        default=3.0,
        validators=[MinValueValidator(0), MaxValueValidator(50)],
        help_text=(
            "A refresh (the champion's recipe on fresher data) replaces the champion unless its "
            "MAE on the latest week is worse than the champion's by more than this many percent."
        ),
    )
    min_shadow_days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(90)],
        help_text=(
            "Days of stored forecasts with actuals a challenger needs beside the champion before "
            "the daily judging may promote it, or an experiment adopt it."
        ),
    )
    min_post_change_days = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
        help_text=(
            "During a drift incident, challengers are judged on days after the change only; "
            "fewer days than this are not enough for a verdict."
        ),
    )
    drift_snooze_days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MinValueValidator(0), MaxValueValidator(90)],
        help_text="After a person dismisses a drift incident, no new one opens for this many days.",
    )

    walk_forward_warm_start = models.BooleanField(
        default=True,
        help_text=(
            "The weekly walk-forward of a boosted model continues each window's trees from the "
            "window before (a full refit every 4 windows) instead of refitting every window: "
            "about 0.6x the time, MAE within 0.1% (bench/backtest.py). The promotion gate "
            "always refits."
        ),
    )

    replay_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replays",
        help_text="A sandbox where `manage.py replay_operations` replays this tenant's history",
    )

    auto_create_schema = True

    def clean(self) -> None:
        import holidays

        if self.subdivision and not self.country:
            raise ValidationError({"subdivision": "A subdivision needs a country."})
        known = holidays.list_supported_countries().get(self.country, [])
        if self.subdivision and self.subdivision not in known:
            raise ValidationError(
                {"subdivision": f"{self.country} has no subdivision {self.subdivision!r}."}
            )

    auto_drop_schema = False

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"


class Domain(DomainMixin):
    def __str__(self) -> str:
        return self.domain
