"""Writes of the forecasting app: sales import (more services join as modules of this package)."""

from forecasting.services.imports import (
    ImportSummary,
    RowError,
    SalesImportError,
    import_sales,
)

__all__ = ["ImportSummary", "RowError", "SalesImportError", "import_sales"]
