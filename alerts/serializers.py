"""JSON shapes of ML alerts (the spec's example alert) and of the requests that change them."""

from rest_framework import serializers

from alerts.models import MLAlert
from alerts.services import ACTIONS
from config.api import RelatedLabelField
from config.api_input import TextField


class MLAlertSerializer(serializers.ModelSerializer):
    ml_alert_id = serializers.IntegerField(source="pk", read_only=True)
    requires_action = serializers.ChoiceField(
        choices=["yes", "maybe", "no"],
        read_only=True,
        help_text="Whether a person must decide (after the alert types table of the spec)",
    )
    model_version = RelatedLabelField(
        annotation="model_version_label",
        source="model_version.version",
        help_text="Version label, e.g. v13",
    )
    model_version_id = serializers.IntegerField(read_only=True, allow_null=True)
    experiment_id = serializers.IntegerField(read_only=True, allow_null=True)
    read_by = RelatedLabelField(annotation="read_by_username", source="read_by.username")
    actioned_by = RelatedLabelField(
        annotation="actioned_by_username", source="actioned_by.username"
    )
    metadata = serializers.DictField(read_only=True)

    class Meta:
        model = MLAlert
        fields = [
            "ml_alert_id",
            "alert_type",
            "severity",
            "title",
            "message",
            "metadata",
            "status",
            "action_url",
            "requires_action",
            "occurrences",
            "model_version",
            "model_version_id",
            "experiment_id",
            "created_at",
            "last_raised_at",
            "read_by",
            "read_at",
            "actioned_by",
            "actioned_at",
            "action_taken",
            "action_note",
        ]
        read_only_fields = fields


class AlertActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=ACTIONS,
        help_text="approve: do what the alert proposes (a drift or promotion alert promotes its "
        "challenger); dismiss: close it (its challenger is kept or archived per tenant policy)",
    )
    note = TextField(required=False, allow_blank=True, default="", max_length=2000)


class SeverityCountsSerializer(serializers.Serializer):
    info = serializers.IntegerField()
    warning = serializers.IntegerField()
    critical = serializers.IntegerField()
    total = serializers.IntegerField()


class OpenCountsSerializer(SeverityCountsSerializer):
    action_required = serializers.IntegerField(
        help_text="Open alerts of a type that needs a person's decision"
    )


class StatusCountsSerializer(serializers.Serializer):
    unread = serializers.IntegerField()
    read = serializers.IntegerField()
    actioned = serializers.IntegerField()
    dismissed = serializers.IntegerField()


class AlertStatsSerializer(serializers.Serializer):
    unread = SeverityCountsSerializer(help_text="Unread alerts by severity")
    open = OpenCountsSerializer(help_text="Unread or read (not yet closed) alerts by severity")
    by_status = StatusCountsSerializer()
