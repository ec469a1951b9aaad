"""Custom integrations used by the Home Assistant tests (Home Assistant imports this package)."""
