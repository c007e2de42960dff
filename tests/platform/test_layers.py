"""The apps' layers, read from their imports (lazy ones inside functions included): tenants at
the bottom, then forecasting and alerts, then mlops, then experiments. `config` is the project's
own package (settings, URLs, the admin site and its home page) and may import any app."""

import ast
import itertools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("tenants", "forecasting", "alerts", "mlops", "experiments")


def app_imports() -> dict[str, dict[str, set[str]]]:
    """For each app, the other apps it imports and the files that do."""
    graph = {app: {} for app in APPS}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in APPS and top != app:
                        graph[app].setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return graph


@pytest.mark.nodb
def test_alerts_imports_neither_mlops_nor_experiments():
    imported = app_imports()["alerts"]
    assert not {"mlops", "experiments"} & imported.keys(), imported


@pytest.mark.nodb
def test_the_apps_import_each_other_without_a_cycle():
    graph = app_imports()
    cycles = [
        (first, second, sorted(graph[first][second]), sorted(graph[second][first]))
        for first, second in itertools.combinations(APPS, 2)
        if second in graph[first] and first in graph[second]
    ]
    assert cycles == []
    # No longer cycles either: a topological order exists.
    remaining = {app: set(graph[app]) for app in APPS}
    while remaining:
        bottom = [app for app, needs in remaining.items() if not needs & remaining.keys()]
        assert bottom, remaining
        for app in bottom:
            del remaining[app]


@pytest.mark.nodb
def test_the_graph_sees_imports_inside_functions():
    # mlops imports forecasting at module level and inside functions; experiments imports mlops.
    graph = app_imports()
    assert "forecasting" in graph["mlops"] and "mlops" in graph["experiments"]
