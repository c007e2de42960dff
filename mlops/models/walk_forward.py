"""Walk-forward runs spread over workers: one row per run, one per window a worker finished."""

from django.db import models
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from config.transitions import SYSTEM
from mlops.models.registry import ModelVersion


class WalkForwardRun(ConcurrentTransitionMixin, models.Model):
    """One walk-forward of one version whose windows run as separate tasks (a Celery chord):
    which windows it has, how many are done, and how it ended. Its windows' results reach
    `BacktestResult` together, when the last one is in, or not at all."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"  # windows queued or running on workers
        SUCCEEDED = "succeeded", "Succeeded"  # every window done; results stored together; final
        FAILED = "failed", "Failed"  # a window failed or never came: nothing stored; final

    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="walk_forward_runs"
    )
    status = FSMField(choices=Status.choices, default=Status.RUNNING, protected=True)
    requested_at = models.DateTimeField(help_text="When this walk-forward was asked for")
    cutoffs = models.JSONField(help_text="The windows' first days (ISO dates), oldest first")
    horizon = models.PositiveSmallIntegerField(default=7, help_text="Days each window forecasts")
    warm_start = models.BooleanField(
        default=False,
        help_text="Windows continue the trees of the window before, a full refit every "
        "`warm_start_every`; each such chain runs as one task",
    )
    warm_start_every = models.PositiveSmallIntegerField(default=1)
    end = models.DateField(help_text="The last sales day the walk-forward covers")
    error = models.TextField(blank=True, help_text="Why it failed")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version"],
                condition=models.Q(status="running"),
                name="one_running_walk_forward_per_version",
            )
        ]

    def __str__(self) -> str:
        return f"Walk-forward of {self.model_version} from {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def n_windows(self) -> int:
        return len(self.cutoffs)

    def chains(self) -> list[list[str]]:
        """The cutoffs as the tasks run them: one window each when refitting, else chains of at
        most `warm_start_every` windows (each a full refit, then continuations), as even as
        possible so that workers share them evenly (13 windows: 4, 3, 3, 3)."""
        longest = self.warm_start_every if self.warm_start else 1
        count = -(-self.n_windows // longest)
        sizes = [
            self.n_windows // count + (index < self.n_windows % count) for index in range(count)
        ]
        starts = [sum(sizes[:index]) for index in range(count)]
        return [
            self.cutoffs[start : start + size] for start, size in zip(starts, sizes, strict=True)
        ]

    @transition(field=status, source=Status.RUNNING, target=Status.SUCCEEDED, custom=SYSTEM)
    def succeed(self) -> None:
        """Every window is in and stored."""

    @transition(field=status, source=Status.RUNNING, target=Status.FAILED, custom=SYSTEM)
    def fail(self) -> None:
        """A window failed, or never came back: nothing of the run is stored."""


class WalkForwardWindow(models.Model):
    """One window of a run, as the worker that ran it left it: its metrics, not yet stored as a
    backtest result (or `skipped` when it had too little history to fit)."""

    run = models.ForeignKey(WalkForwardRun, on_delete=models.CASCADE, related_name="windows")
    cutoff = models.DateField()
    result = models.JSONField(null=True, blank=True, help_text="The BacktestResult fields")
    skipped = models.BooleanField(default=False, help_text="Too little history before the cutoff")
    finished_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cutoff"]
        constraints = [
            models.UniqueConstraint(fields=["run", "cutoff"], name="one_result_per_window")
        ]

    def __str__(self) -> str:
        return f"Window from {self.cutoff} of run {self.run_id}"
