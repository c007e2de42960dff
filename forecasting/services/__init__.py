"""Writes of the forecasting app: the sales and promotion calendar imports."""

from forecasting.services.calendar import (
    CalendarImportError,
    CalendarImportSummary,
    import_promotion_calendar,
)
from forecasting.services.imports import (
    ImportSummary,
    RowError,
    SalesImportError,
    import_sales,
)

__all__ = [
    "CalendarImportError",
    "CalendarImportSummary",
    "ImportSummary",
    "RowError",
    "SalesImportError",
    "import_promotion_calendar",
    "import_sales",
]
