"""The local runtime: one machine, real Envoy, real Prometheus, workloads as supervised processes.

Wires adapters to the control loop; must not be imported by anything below it (engine, adapters, control).
"""
