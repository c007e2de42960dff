"""Tenant admin of experiments: the list, the propose form, each experiment's page with its next
steps as buttons, results per segment with a chart, and the decision; every step is a service."""

from experiments.admin import experiments  # noqa: F401  (registers the admin)
