"""Agent backends: the catalog, briefs, the runner and the check of what an agent changed."""
