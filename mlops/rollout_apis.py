"""REST endpoints of canary rollouts: start one, read it, and a person's pause, resume, abort or
skip."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import HasRequiredPermissions
from config.api_errors import error_responses
from config.read_cache import cached_read
from mlops.apis import NAME_PARAMETER, VERSION_PARAMETER, VIEW_MODELS, version_from_path
from mlops.rollout_selectors import latest_rollout, rollout_detail
from mlops.rollout_serializers import RolloutPlanSerializer, StartCanarySerializer
from mlops.serializers import ReasonSerializer
from mlops.services.rollouts import act_on_rollout, start_canary


def plan_body(plan) -> dict:
    return RolloutPlanSerializer(rollout_detail(plan)).data


class ModelCanaryApi(APIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_MODELS

    @extend_schema(
        operation_id="models_canary_retrieve",
        summary="The version's canary rollout: today's step, guardrails, timeline",
        description="The version's newest rollout plan (running, paused or ended): its shares "
        "and bake days, today's step, the last daily judgement's guardrail values against the "
        "champion's and their tolerances, and every decision with who, why and the numbers. "
        "404 when the version never had one.",
        parameters=[VERSION_PARAMETER, NAME_PARAMETER],
        responses={200: RolloutPlanSerializer, **error_responses(400, 404)},
        tags=["models"],
    )
    @cached_read
    def get(self, request, version: str):
        found = version_from_path(request, version)
        plan = latest_rollout(found)
        if plan is None:
            raise Http404(f"{found.version} has no canary rollout.")
        return Response(plan_body(plan))

    @extend_schema(
        operation_id="models_canary_start",
        summary="Start a canary rollout of a version (ml_manager)",
        description="The version (candidate, shadow or challenger) becomes a challenger serving "
        "`initial_share` of its series, chosen sticky and stratified by department and demand "
        "class; each day after the T-1 backtest its guardrails are judged against the champion "
        "on the same series and days. A breach rolls it back; a baked step moves to the next "
        "share; the last one promotes it. 409 when it has no champion to compare with, a "
        "canary already runs in its segment, or it is champion or archived.",
        parameters=[VERSION_PARAMETER, NAME_PARAMETER],
        request=StartCanarySerializer,
        responses={201: RolloutPlanSerializer, **error_responses(400, 404, 409, 415)},
        tags=["models"],
    )
    def post(self, request, version: str):
        found = version_from_path(request, version)
        body = StartCanarySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        plan = start_canary(
            version=found,
            actor=request.user,
            reason=data["reason"],
            initial_share=data["initial_share"],
            steps=data["steps"],
            bake_days=data["bake_days"],
            guardrails=[dict(rule) for rule in data["guardrails"]]
            if "guardrails" in data
            else None,
            confidence=data.get("confidence"),
        )
        return Response(plan_body(plan), status=status.HTTP_201_CREATED)


class CanaryActionApi(APIView):
    """A person's move of the version's running or paused canary."""

    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_MODELS
    action = ""

    def post(self, request, version: str):
        found = version_from_path(request, version)
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        plan = latest_rollout(found)
        if plan is None:
            raise Http404(f"{found.version} has no canary rollout.")
        plan = act_on_rollout(
            plan=plan, action=self.action, actor=request.user, reason=body.validated_data["reason"]
        )
        return Response(plan_body(plan))


def _action_api(action: str, summary: str, description: str) -> type[CanaryActionApi]:
    schema = extend_schema(
        operation_id=f"models_canary_{action}",
        summary=summary,
        description=description + " Recorded with who and why; an illegal move answers 409 "
        "with the moves allowed now.",
        parameters=[VERSION_PARAMETER, NAME_PARAMETER],
        request=ReasonSerializer,
        responses={200: RolloutPlanSerializer, **error_responses(400, 404, 409, 415)},
        tags=["models"],
    )

    def post(self, request, version: str):
        return CanaryActionApi.post(self, request, version)

    # Each view gets its own function, so that each keeps its own schema.
    return type(
        f"Canary{action.capitalize()}Api",
        (CanaryActionApi,),
        {"action": action, "post": schema(post)},
    )


CanaryPauseApi = _action_api(
    "pause",
    "Pause a running canary (ml_manager)",
    "It holds its step: the canary keeps serving its series and its guardrails are still "
    "judged (a breach still rolls it back), but no step is taken until it is resumed.",
)
CanaryResumeApi = _action_api(
    "resume", "Resume a paused canary (ml_manager)", "Its step bakes again from where it was."
)
CanaryAbortApi = _action_api(
    "abort",
    "Abort a canary (ml_manager)",
    "The champion serves the canary's series again; the version waits as a challenger.",
)
CanarySkipApi = _action_api(
    "skip",
    "Skip a running canary to its next step (ml_manager)",
    "The next share now, without waiting for the bake; from the last step it promotes the "
    "version through the registry.",
)
