"""REST endpoints of experiments: propose, review, start, shadow-test, decide, and their results."""

from contextlib import contextmanager

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django_fsm import TransitionNotAllowed
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import HasRequiredPermissions
from config.api_errors import error_responses, transition_conflict
from config.read_cache import cached_read
from experiments.models import ModelExperiment
from experiments.selectors import experiment_list
from experiments.serializers import (
    CompleteExperimentSerializer,
    ExperimentDetailSerializer,
    ExperimentSerializer,
    NoteSerializer,
    ProposeExperimentSerializer,
    RejectSerializer,
)
from experiments.services import (
    allowed_moves,
    approve_experiment,
    complete_experiment,
    propose_experiment,
    queue_start_experiment,
    reject_experiment,
    start_shadow_testing,
)
from experiments.stored_results import queue_experiment_results, stored_experiment_results

VIEW_EXPERIMENTS = ("experiments.view_modelexperiment",)
# The services name model fields; the API names them as the spec does.
FIELD_NAMES = {"name": "experiment_name", "rationale": "decision_rationale"}


@contextmanager
def service_errors(experiment: ModelExperiment | None = None):
    """Turn the services' refusals into API errors: field errors under the API's field names,
    illegal moves as 409 listing the moves a person may make now."""
    try:
        yield
    except DjangoValidationError as error:
        if hasattr(error, "error_dict"):
            fields = {FIELD_NAMES.get(k, k): v for k, v in error.message_dict.items()}
            raise exceptions.ValidationError(fields) from error
        raise exceptions.ValidationError({"non_field_errors": error.messages}) from error
    except TransitionNotAllowed as error:
        target = error.object if error.object is not None else experiment
        if target is not None:
            # A fresh copy, not refresh_from_db(): django-fsm lifts the protection of the status
            # field for the whole model class while it refreshes, so a refresh in one thread
            # can meet another thread's and fail with "Direct status modification is not
            # allowed" (a 500 instead of this 409).
            target = type(target)._default_manager.filter(pk=target.pk).first() or target
        allowed = allowed_moves(target) if target is not None else []
        raise transition_conflict(error, target, allowed=allowed) from error


def experiment_from_path(experiment_id: int) -> ModelExperiment:
    return get_object_or_404(ModelExperiment, pk=experiment_id)


class ExperimentFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=ModelExperiment.Status.choices)
    experiment_type = django_filters.MultipleChoiceFilter(
        choices=ModelExperiment.ExperimentType.choices
    )

    class Meta:
        model = ModelExperiment
        fields = ["status", "experiment_type"]


class ExperimentListApi(generics.ListAPIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_EXPERIMENTS
    serializer_class = ExperimentSerializer
    filterset_class = ExperimentFilter
    ordering_fields = ["created_at", "completed_at"]
    ordering = ["-created_at", "-pk"]

    def get_queryset(self):
        return experiment_list()

    @extend_schema(
        operation_id="experiments_list",
        summary="List experiments, newest first",
        responses={200: ExperimentSerializer(many=True), **error_responses(400, 404)},
        tags=["experiments"],
    )
    @cached_read
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="experiments_propose",
        summary="Propose an experiment (data_scientist); it waits for a manager's approval",
        description="The proposer is the signed-in user (a `proposed_by` in the body is not "
        "read). The configuration is checked against the experiment type.",
        request=ProposeExperimentSerializer,
        responses={201: ExperimentDetailSerializer, **error_responses(400, 415)},
        tags=["experiments"],
    )
    def post(self, request):
        body = ProposeExperimentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        with service_errors():
            experiment = propose_experiment(
                actor=request.user,
                name=data["experiment_name"],
                hypothesis=data["hypothesis"],
                experiment_type=data["experiment_type"],
                configuration=data["configuration"],
                success_metric=data["success_metric"],
                expected_improvement_pct=data["expected_improvement_pct"],
                model_name=data["model_name"],
            )
        location = reverse("api-experiment", kwargs={"experiment_id": experiment.pk})
        return Response(
            ExperimentDetailSerializer(experiment).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )


class ExperimentDetailApi(generics.RetrieveAPIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_EXPERIMENTS
    serializer_class = ExperimentDetailSerializer
    lookup_url_kwarg = "experiment_id"

    def get_queryset(self):
        return experiment_list()

    @extend_schema(
        operation_id="experiments_retrieve",
        summary="One experiment with its step-by-step log",
        responses={200: ExperimentDetailSerializer, **error_responses(404)},
        tags=["experiments"],
    )
    @cached_read
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


def _moved(experiment: ModelExperiment, *, code: int = status.HTTP_200_OK) -> Response:
    fresh = experiment_list().get(pk=experiment.pk)  # a copy, for the reason in service_errors
    return Response(ExperimentDetailSerializer(fresh).data, status=code)


class ExperimentApproveApi(APIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_EXPERIMENTS

    @extend_schema(
        operation_id="experiments_approve",
        summary="Approve a proposed experiment (ml_manager)",
        request=NoteSerializer,
        responses={200: ExperimentDetailSerializer, **error_responses(400, 404, 409, 415)},
        tags=["experiments"],
    )
    def patch(self, request, experiment_id: int):
        experiment = experiment_from_path(experiment_id)
        body = NoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with service_errors(experiment):
            approve_experiment(
                experiment=experiment, actor=request.user, note=body.validated_data["note"]
            )
        return _moved(experiment)


class ExperimentRejectApi(APIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_EXPERIMENTS

    @extend_schema(
        operation_id="experiments_reject",
        summary="Reject a proposed experiment, saying why (ml_manager)",
        request=RejectSerializer,
        responses={200: ExperimentDetailSerializer, **error_responses(400, 404, 409, 415)},
        tags=["experiments"],
    )
    def patch(self, request, experiment_id: int):
        experiment = experiment_from_path(experiment_id)
        body = RejectSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with service_errors(experiment):
            reject_experiment(
                experiment=experiment, actor=request.user, note=body.validated_data["note"]
            )
        return _moved(experiment)


class ExperimentStartApi(APIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_EXPERIMENTS

    @extend_schema(
        operation_id="experiments_start",
        summary="Start an approved experiment (data_scientist): its versions train on a worker",
        description="Answers 202 at once; the experiment moves to `in_progress` when the worker "
        "starts and links its trained versions when training ends (poll GET "
        "/experiments/{id}).",
        request=None,
        responses={202: ExperimentDetailSerializer, **error_responses(404, 409)},
        tags=["experiments"],
    )
    def post(self, request, experiment_id: int):
        experiment = experiment_from_path(experiment_id)
        with service_errors(experiment):
            queue_start_experiment(experiment=experiment, actor=request.user)
        return _moved(experiment, code=status.HTTP_202_ACCEPTED)


class ExperimentShadowTestingApi(APIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_EXPERIMENTS

    @extend_schema(
        operation_id="experiments_shadow_testing",
        summary="Shadow-test the experiment's trained versions (data_scientist)",
        request=None,
        responses={200: ExperimentDetailSerializer, **error_responses(400, 404, 409)},
        tags=["experiments"],
    )
    def post(self, request, experiment_id: int):
        experiment = experiment_from_path(experiment_id)
        with service_errors(experiment):
            start_shadow_testing(experiment=experiment, actor=request.user)
        return _moved(experiment)


class ExperimentCompleteApi(APIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_EXPERIMENTS

    @extend_schema(
        operation_id="experiments_complete",
        summary="Decide a shadow-tested experiment: adopt, partial_adopt or reject",
        description="Results are computed by the system (a `results` in the body is not read). "
        "Adopting promotes the adopted versions: a data scientist may adopt only versions that "
        "met the approved success criterion; anything else needs an ml_manager.",
        request=CompleteExperimentSerializer,
        responses={200: ExperimentDetailSerializer, **error_responses(400, 404, 409, 415)},
        tags=["experiments"],
    )
    def post(self, request, experiment_id: int):
        experiment = experiment_from_path(experiment_id)
        body = CompleteExperimentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        adopted = None
        if "adopted_versions" in data:
            versions = {v.version: v.pk for v in experiment.model_versions.all()}
            unknown = [label for label in data["adopted_versions"] if label not in versions]
            if unknown:
                raise exceptions.ValidationError(
                    {"adopted_versions": [f"Not versions of this experiment: {unknown}."]}
                )
            adopted = [versions[label] for label in data["adopted_versions"]]
        with service_errors(experiment):
            complete_experiment(
                experiment=experiment,
                actor=request.user,
                decision=data["decision"],
                rationale=data["decision_rationale"],
                adopted_versions=adopted,
                override_reason=data.get("override_reason", ""),
            )
        return _moved(experiment)


class ExperimentResultsApi(APIView):
    permission_classes = [HasRequiredPermissions]
    required_permissions = VIEW_EXPERIMENTS

    @extend_schema(
        operation_id="experiments_results",
        summary="The experiment's results, computed by the system",
        description="A completed experiment answers the results its decision was made on. An "
        "open one answers the results a worker last computed (shadow predictions with actuals, "
        "else walk-forward backtests against the champion), with `computed_at` and `state`: "
        "`current`, `stale` (older than 6 hours or for other versions: a worker recomputes "
        "them) or `pending` (a worker computes them; poll again). A request never computes "
        "them. Per segment: errors of both sides, improvement in %, a paired test, and "
        "whether the success criterion is met.",
        responses={200: OpenApiTypes.OBJECT, **error_responses(404)},
        tags=["experiments"],
    )
    @cached_read
    def get(self, request, experiment_id: int):
        experiment = experiment_from_path(experiment_id)
        if experiment.status == ModelExperiment.Status.COMPLETED and experiment.results:
            return Response(experiment.results)
        stored = stored_experiment_results(experiment=experiment)
        if not stored.current:
            queue_experiment_results(experiment=experiment)
        return Response(stored.body)
