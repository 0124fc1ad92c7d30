"""A podinfo-compatible demo application (asyncio) with fault knobs, and its ``podcli`` health checker."""
