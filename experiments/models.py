"""Tables of this app (tenant schema)."""
