"""Image automation tests."""
