"""The Kubernetes operator (kopf); the only package that imports kopf or a Kubernetes client."""
