"""Tests of the notify package: each chat service's payload, delivery, the factory, alert dispatch."""
