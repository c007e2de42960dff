"""ML alerts and their notification channels."""
