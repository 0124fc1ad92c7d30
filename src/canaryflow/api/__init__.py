"""Typed resource models: Flagger's Canary, MetricTemplate and AlertProvider, their status, YAML loading,
validation with path-precise messages and CRD generation.

This package does no I/O beyond reading the text it is handed; it must not import any other canaryflow package.
"""
