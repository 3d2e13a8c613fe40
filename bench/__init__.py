"""Benchmarks of review-loop against real parts (sandbox GitHub, git, PostgreSQL); not tests."""
