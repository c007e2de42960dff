"""Human-led experiments on models."""
