"""Tests of the hooks package: Flagger's webhook calls over HTTP, and the in-memory runner."""
