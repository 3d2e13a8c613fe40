"""review-loop: a GitHub App that runs a closed review loop on pull requests."""

__version__ = "0.1.0"
