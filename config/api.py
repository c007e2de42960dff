"""What every API view shares: page-numbered lists and the permission a role needs.

Kept free of view imports: DRF imports the pagination class while its own views load.
"""

from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission


class Pagination(PageNumberPagination):
    """`?page=2&page_size=100`; answers `{"count", "next", "previous", "results"}`."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


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
