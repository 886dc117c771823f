"""alphascope engine."""
