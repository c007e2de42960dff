"""Concurrent promotions of one name/segment: one champion at the end, no deadlock, no crash."""

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from mlops.models import ModelTransition, ModelVersion
from mlops.services import ChampionChanged, promote_to_champion
from mlops.services.promotion import PromotionDecision
from tests.mlops.factories import ModelVersionFactory, UserFactory

Status = ModelVersion.Status
ATTEMPTS = 20


def judged_against(champion_id: int) -> PromotionDecision:
    """A verdict made against `champion_id` (what an automatic evaluation hands over)."""
    return PromotionDecision(
        promote=True,
        reason="Cleared the gate",
        checks={"mae": True, "mape": True, "coverage": True, "confidence": True},
        candidate_metrics={"mae": 1.0},
        champion_metrics={"mae": 1.2},
        improvement={"mae_pct": 16.7},
        test={"confidence": 0.99},
        thresholds={"min_improvement_pct": 5.0, "min_confidence": 0.95},
        n_points=100,
        n_series=20,
        replaces_id=champion_id,
    )


def run_concurrently(tenant, attempt) -> list[str]:
    """Run attempt(i) for i < ATTEMPTS, each in its own thread and database connection, all
    released at once; returns each attempt's outcome."""
    barrier = threading.Barrier(ATTEMPTS)
    outcomes: list[str] = [""] * ATTEMPTS

    def worker(index: int) -> None:
        try:
            connection.set_tenant(tenant)
            barrier.wait(timeout=30)
            outcomes[index] = attempt(index)
        except ChampionChanged:
            outcomes[index] = "refused"
        except Exception as error:  # any other failure is what the test must catch
            outcomes[index] = f"error: {error!r}"
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(ATTEMPTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a promotion hung (deadlock?)"
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_automatic_promotions_leave_one_champion_and_refuse_the_rest(tenant):
    champion = ModelVersionFactory(status=Status.CHAMPION)
    candidates = [ModelVersionFactory().pk for _ in range(ATTEMPTS)]

    def attempt(index: int) -> str:
        version = ModelVersion.objects.get(pk=candidates[index])
        promote_to_champion(
            version=version, actor=None, reason="auto", decision=judged_against(champion.pk)
        )
        return "promoted"

    outcomes = run_concurrently(tenant, attempt)

    assert outcomes.count("promoted") == 1, outcomes
    assert outcomes.count("refused") == ATTEMPTS - 1, outcomes
    champions = ModelVersion.objects.filter(status=Status.CHAMPION)
    assert champions.count() == 1
    winner = candidates[outcomes.index("promoted")]
    assert champions.get().pk == winner
    assert ModelVersion.objects.get(pk=champion.pk).status == Status.ARCHIVED
    assert ModelVersion.objects.filter(pk__in=candidates, status=Status.CANDIDATE).count() == 19
    # Only the winning promotion and the one retirement were recorded.
    assert ModelTransition.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_manual_promotions_are_serialised_into_one_champion(tenant):
    UserFactory(username="manager", role="ml_manager")
    candidates = [ModelVersionFactory().pk for _ in range(ATTEMPTS)]

    def attempt(index: int) -> str:
        manager = get_user_model().objects.get(username="manager")
        version = ModelVersion.objects.get(pk=candidates[index])
        promote_to_champion(version=version, actor=manager, reason=f"attempt {index}")
        return "promoted"

    outcomes = run_concurrently(tenant, attempt)

    assert outcomes == ["promoted"] * ATTEMPTS
    assert ModelVersion.objects.filter(status=Status.CHAMPION).count() == 1
    assert ModelVersion.objects.filter(status=Status.ARCHIVED).count() == ATTEMPTS - 1
    promotions = ModelTransition.objects.filter(to_status=Status.CHAMPION).order_by("pk")
    retirements = ModelTransition.objects.filter(from_status=Status.CHAMPION).order_by("pk")
    assert promotions.count() == ATTEMPTS and retirements.count() == ATTEMPTS - 1
    # Serialised: each promotion after the first retired exactly the champion before it.
    promoted_in_order = [move.model_version_id for move in promotions]
    assert [move.model_version_id for move in retirements] == promoted_in_order[:-1]
    last = ModelVersion.objects.get(status=Status.CHAMPION)
    assert last.pk == promoted_in_order[-1]
