"""Model registry, champion/challenger arena, backtests, drift and retraining."""
