"""Typed resource models: Flagger's Canary, MetricTemplate and AlertProvider, their status, YAML loading,
validation with path-precise messages and CRD generation.

It reads manifests (files, directories, stdin) and nothing else; it must not import any other canaryflow package.
"""
