"""Tenants (one PostgreSQL schema per retailer) and their provisioning."""
