"""Troupe catalyst operator: a preview environment (namespace, build, release, Ingress) per pull request."""
