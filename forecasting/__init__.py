"""Sales, stores, products, forecasts, features, model families and metrics."""
