"""Each family's declared hyperparameters: its defaults fit them, and a recipe that does not is
refused when the model is built, naming the key."""

import pytest

from forecasting.families import FAMILIES, build_model
from forecasting.families.hyperparameters import HyperparameterError, Spec, hyperparameter_problems

pytestmark = pytest.mark.nodb


@pytest.mark.parametrize("algorithm", sorted(FAMILIES))
def test_every_familys_defaults_fit_its_declared_hyperparameters(algorithm):
    family = FAMILIES[algorithm]
    defaults = {**family.common_hyperparameters, **family.default_hyperparameters}
    assert hyperparameter_problems(family, defaults) == {}
    assert set(family.specs()) <= set(defaults)  # no spec for a name the family lacks


def test_building_a_model_with_a_bad_value_names_the_key():
    with pytest.raises(HyperparameterError) as refused:
        build_model("xgboost", max_depth=0)
    assert refused.value.key == "max_depth"
    assert str(refused.value) == "max_depth: 0 is out of range; give a value from 1 to 20."
    with pytest.raises(HyperparameterError, match=r"^calibration_windows: give a whole number"):
        build_model("seasonal_naive", calibration_windows="4")


def test_specs_say_what_they_accept():
    rate = Spec(float, minimum=0, maximum=1, above=True)
    assert [rate.problem(v) is None for v in (0.5, 1, 0, 1.5, float("nan"), "0.5", True)] == [
        True,
        True,
        False,
        False,
        False,
        False,
        False,
    ]
    assert Spec(int, minimum=1).problem(2.0) == "give a whole number of at least 1."
    assert Spec(str, choices=("a", "b")).problem("c") == "'c' is not one of a, b."
    assert hyperparameter_problems(FAMILIES["xgboost"], {"seed": [1]}) == {
        "seed": "give a whole number from 0 to 2147483647."
    }
