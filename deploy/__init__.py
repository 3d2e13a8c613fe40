"""Checks of the deployment files that need no cluster and no Docker daemon (deploy-check)."""
