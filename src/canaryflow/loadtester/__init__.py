"""A flagger-loadtester compatible HTTP service: cmd/bash tasks, gates and rollback gates."""
