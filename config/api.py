"""What every API view shares: strict page-numbered lists, query parameters read once each, and
the permission a role needs.

Kept free of view imports: DRF imports the pagination class while its own views load.
"""

from rest_framework import exceptions, serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission


def single_values(request, names) -> dict[str, str]:
    """The query parameters `names` as one value each; a parameter given twice is a 400
    (the API would otherwise read one of the two and ignore the other silently)."""
    params = request.query_params
    repeated = {
        name: ["Give this parameter once."] for name in names if len(params.getlist(name)) > 1
    }
    if repeated:
        raise exceptions.ValidationError(repeated)
    return {name: params[name] for name in names if name in params}


def validated_query(request, serializer_class) -> dict:
    """The query parameters read by `serializer_class`, validated (400 with field errors).

    Read as a plain dict, so that an empty value is an invalid value, not a missing one."""
    query = serializer_class(data=single_values(request, serializer_class().fields))
    query.is_valid(raise_exception=True)
    return query.validated_data


class Pagination(PageNumberPagination):
    """`?page=2&page_size=100`; answers `{"count", "next", "previous", "results"}`. A page past
    the end is a 404; a page size that is not a whole number from 1 to 500 is a 400."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        values = single_values(request, [self.page_query_param, self.page_size_query_param])
        raw = values.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise exceptions.ValidationError(
                {
                    self.page_size_query_param: [
                        f"Give a whole number from 1 to {self.max_page_size}."
                    ]
                }
            )
        return int(raw)

    def get_schema_operation_parameters(self, view):
        # The limits the server enforces, in the schema, so clients (and fuzzers) know them.
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


class HasRequiredPermissions(BasePermission):
    """The view's `required_permissions` (e.g. `mlops.view_modelversion`), which every role holds
    for what it may see; a signed-in user without a role is refused. Changes are checked by the
    services themselves, with the permission their transition needs."""

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        required = getattr(view, "required_permissions", ())
        return user.has_perms(required)


class RelatedLabelField(serializers.CharField):
    """A related object's label (a version, a username), read from the row's annotation
    `annotation` when the queryset has one, so that a list loads no related objects; otherwise
    through `source` (e.g. `model_version.version`), null when the relation is empty."""

    def __init__(self, *, annotation: str, **kwargs) -> None:
        self.annotation = annotation
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        if hasattr(instance, self.annotation):
            return getattr(instance, self.annotation)
        return super().get_attribute(instance)


class RelatedLabelsField(serializers.ListField):
    """The labels of a to-many relation's objects, from the row's annotation `annotation` (an
    array aggregated by the queryset) when it has one, else from `source` and `label`."""

    def __init__(self, *, annotation: str, label_attribute: str, **kwargs) -> None:
        self.annotation = annotation
        self.label_attribute = label_attribute
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("child", serializers.CharField())
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        if hasattr(instance, self.annotation):
            return getattr(instance, self.annotation)
        related = super().get_attribute(instance)
        return [getattr(each, self.label_attribute) for each in related.all()]
