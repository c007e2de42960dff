"""Tests that saved models load in a fresh process, predict the same, and refuse tampering."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from forecasting.artifacts import ArtifactIntegrityError, deserialize, serialize
from forecasting.families import build_model
from forecasting.panel import Panel
from forecasting.synthetic import generate_sales

pytestmark = pytest.mark.nodb

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
SALES_ARGUMENTS = {"stores": 2, "products": 10, "days": 120, "seed": 31}
RECIPES = {
    "seasonal_naive": {},
    "xgboost": {"n_estimators": 30, "max_depth": 5},
    "lstm": {"epochs": 1, "windows_per_epoch": 1000, "hidden_size": 8},
}


@pytest.fixture(scope="module")
def panel() -> Panel:
    return Panel.from_frame(generate_sales(**SALES_ARGUMENTS))


@pytest.fixture(scope="module")
def saved(panel, tmp_path_factory):
    """Each recipe fitted, saved to a file, and its forecasts from the panel's last week."""
    folder = tmp_path_factory.mktemp("artifacts")
    start = panel.dates[-7]
    saved = {}
    for algorithm, hyperparameters in RECIPES.items():
        model = build_model(algorithm, **hyperparameters).fit(panel.until(start))
        artifact = serialize(model)
        path = folder / f"{algorithm}.zip"
        path.write_bytes(artifact.data)
        saved[algorithm] = (artifact, path, model.predict(panel, start))
    return saved


def test_artifact_records_checksum_versions_and_recipe(saved):
    artifact, _, _ = saved["xgboost"]
    assert len(artifact.sha256) == 64
    assert {"xgboost", "torch", "numpy", "pandas", "python"} <= set(artifact.library_versions)
    assert artifact.algorithm == "xgboost"
    assert artifact.hyperparameters["n_estimators"] == 30
    assert "lag_7" in artifact.features
    assert b"pickle" not in artifact.data


def test_saved_models_predict_the_same_in_a_fresh_process(saved, panel):
    script = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        from forecasting.artifacts import deserialize
        from forecasting.panel import Panel
        from forecasting.synthetic import generate_sales

        request = json.loads(sys.argv[1])
        panel = Panel.from_frame(generate_sales(**request["sales"]))
        result = {}
        for algorithm, (path, sha256) in request["artifacts"].items():
            model = deserialize(
                Path(path).read_bytes(), algorithm=algorithm, expected_sha256=sha256
            )
            forecasts = model.predict(panel, panel.dates[-7])
            result[algorithm] = [forecasts.values.tolist(), forecasts.upper.tolist()]
        print(json.dumps(result))
        """
    )
    request = {
        "sales": SALES_ARGUMENTS,
        "artifacts": {
            name: [str(path), artifact.sha256] for name, (artifact, path, _) in saved.items()
        },
    }
    completed = subprocess.run(
        [sys.executable, "-c", script, json.dumps(request)],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    reloaded = json.loads(completed.stdout.strip().splitlines()[-1])
    for algorithm, (_, _, forecasts) in saved.items():
        values, upper = reloaded[algorithm]
        np.testing.assert_allclose(values, forecasts.values, rtol=1e-6, err_msg=algorithm)
        np.testing.assert_allclose(upper, forecasts.upper, rtol=1e-6, err_msg=algorithm)


def test_tampered_artifact_is_refused_with_a_clear_message(saved):
    artifact, _, _ = saved["xgboost"]
    tampered = bytearray(artifact.data)
    tampered[len(tampered) // 2] ^= 0xFF
    with pytest.raises(ArtifactIntegrityError, match="failed its integrity check") as error:
        deserialize(bytes(tampered), algorithm="xgboost", expected_sha256=artifact.sha256)
    assert artifact.sha256 in str(error.value)


def test_artifact_of_another_algorithm_is_refused(saved):
    artifact, _, _ = saved["xgboost"]
    with pytest.raises(ArtifactIntegrityError, match="not 'lstm'"):
        deserialize(artifact.data, algorithm="lstm", expected_sha256=artifact.sha256)


def test_same_fit_gives_the_same_bytes(panel):
    history = panel.until(panel.dates[-7])
    first = serialize(build_model("xgboost", **RECIPES["xgboost"]).fit(history))
    second = serialize(build_model("xgboost", **RECIPES["xgboost"]).fit(history))
    assert first.sha256 == second.sha256
