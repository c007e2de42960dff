"""The state diagrams in docs/MLOPS_WORKFLOW.md must say exactly what the FSMs in code do."""

import re
from pathlib import Path

import pytest
from django.apps import apps

pytestmark = pytest.mark.nodb
DOC = Path(__file__).resolve().parents[2] / "docs" / "MLOPS_WORKFLOW.md"
BLOCK = re.compile(r"```mermaid\n(.*?)```", re.S)
EDGE = re.compile(r"^\s*(\[\*\]|\w+)\s*-->\s*(\[\*\]|\w+)\s*(?::\s*(\w+))?\s*$")


def _diagrams() -> dict[str, str]:
    diagrams = {}
    for body in BLOCK.findall(DOC.read_text()):
        marker = re.search(r"%%\s*fsm:\s*(\S+)", body)
        if marker:
            diagrams[marker.group(1)] = body
    return diagrams


def _from_code(label: str) -> tuple[set, str, set]:
    app_label, model_name, field_name = label.split(".")
    model = apps.get_model(app_label, model_name)
    field = model._meta.get_field(field_name)
    edges = set()
    for transition in field.get_all_transitions(model):
        sources = (
            transition.source
            if isinstance(transition.source, list | tuple)
            else [transition.source]
        )
        for source in sources:
            edges.add((str(source), str(transition.target), transition.name))
    return edges, str(field.default), {str(value) for value, _ in field.choices}


def _from_diagram(body: str) -> tuple[set, str | None, set]:
    edges, initial, states = set(), None, set()
    for line in body.splitlines():
        match = EDGE.match(line)
        if not match:
            continue
        source, target, name = match.groups()
        if source == "[*]":
            initial = target
            states.add(target)
        elif target == "[*]":
            states.add(source)
        else:
            edges.add((source, target, name))
            states |= {source, target}
    return edges, initial, states


FSMS = [
    "mlops.ModelVersion.status",
    "mlops.ModelRetrainingLog.status",
    "mlops.DriftIncident.status",
    "alerts.MLAlert.status",
    "experiments.ModelExperiment.status",
    "mlops.RolloutPlan.status",
]


def test_every_lifecycle_has_a_diagram():
    assert set(_diagrams()) == set(FSMS)


@pytest.mark.parametrize("label", FSMS)
def test_diagram_matches_the_state_machine_in_code(label):
    code_edges, code_initial, code_states = _from_code(label)
    doc_edges, doc_initial, doc_states = _from_diagram(_diagrams()[label])
    assert doc_initial == code_initial
    assert doc_states == code_states
    assert doc_edges - code_edges == set(), "the diagram shows transitions the code lacks"
    assert code_edges - doc_edges == set(), "the code has transitions the diagram lacks"
