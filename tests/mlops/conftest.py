"""Fixtures of the registry tests: role users, artifact storage in a temporary folder, sales."""

import pytest

from forecasting.synthetic import generate_sales
from tests.mlops.factories import UserFactory, load_sales

# Small enough that a retrain with its evaluation takes seconds: 40 series, 8 months.
SALES = {"stores": 4, "products": 10, "days": 240, "seed": 5}
# A quick XGBoost recipe for tests (few shallow trees, one calibration week).
QUICK_XGBOOST = {"n_estimators": 30, "max_depth": 4, "calibration_windows": 1}


@pytest.fixture(autouse=True)
def artifact_storage(settings, tmp_path):
    """Artifacts go to a folder of the test's own."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def manager():
    return UserFactory(username="manager", role="ml_manager")


@pytest.fixture
def scientist():
    return UserFactory(username="scientist", role="data_scientist")


@pytest.fixture
def viewer():
    return UserFactory(username="viewer", role="viewer")


@pytest.fixture(scope="session")
def sales_frame():
    return generate_sales(**SALES)


@pytest.fixture
def sales(sales_frame):
    """The generated sales in the test tenant's tables; returns the frame."""
    load_sales(sales_frame)
    return sales_frame
