"""docs/openapi.yaml is what the code generates: a change of the API shows in review."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

COMMITTED = Path(settings.BASE_DIR) / "docs" / "openapi.yaml"


@pytest.mark.nodb
def test_committed_openapi_file_matches_the_code(tmp_path):
    generated = tmp_path / "openapi.yaml"
    call_command("spectacular", "--file", str(generated), "--validate", "--fail-on-warn")
    assert generated.read_text() == COMMITTED.read_text(), (
        "docs/openapi.yaml is stale: run `manage.py spectacular --file docs/openapi.yaml`"
    )
