"""This process's Prometheus histograms: what took how long, measured where it happens.

They live in `REGISTRY`, this module's own registry (not prometheus-client's global one), and
count this process only: scrape every process (docs/operations.md). The fleet's counts come
from the shared database at scrape time instead (`bot/web/metrics.py`). Labels are bounded
sets (task names, route families, status codes, agent names), never a repository or a person.
"""

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.process_collector import ProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)

# From a millisecond to ten minutes: webhook answers, API calls, jobs, agent runs.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

INTAKE_SECONDS = Histogram(
    "review_loop_intake_seconds",
    "POST /webhook: from the request to its answer, by status code.",
    ["status"],
    buckets=_BUCKETS,
    registry=REGISTRY,
)
JOB_SECONDS = Histogram(
    "review_loop_job_seconds",
    "One run of a job's body in this worker, by task and outcome (succeeded, failed).",
    ["task", "outcome"],
    buckets=_BUCKETS,
    registry=REGISTRY,
)
GITHUB_REQUEST_SECONDS = Histogram(
    "review_loop_github_request_seconds",
    "One HTTP request to GitHub's API (each retry counts), by method, route family and "
    "status code (`error`: no response).",
    ["method", "route", "status"],
    buckets=_BUCKETS,
    registry=REGISTRY,
)
THROTTLE_WAIT_SECONDS = Histogram(
    "review_loop_write_throttle_wait_seconds",
    "How long one write to GitHub waited for the installation's write throttle (0: not at all).",
    ["throttle"],
    buckets=(0, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120),
    registry=REGISTRY,
)
AGENT_RUN_SECONDS = Histogram(
    "review_loop_agent_run_seconds",
    "One agent run on one issue, by agent and outcome (ok, failed).",
    ["agent", "outcome"],
    buckets=_BUCKETS,
    registry=REGISTRY,
)


@contextmanager
def timed(histogram: Histogram, **labels: str) -> Iterator[dict[str, str]]:
    """Observe the block's wall time; the block may fill in labels (an outcome) in the dict
    it is given, which starts as `labels`."""
    filled = dict(labels)
    start = time.perf_counter()
    try:
        yield filled
    finally:
        histogram.labels(**filled).observe(time.perf_counter() - start)


# The second segment under /repos/{owner}/{repo}/, or the first elsewhere, names the family;
# anything else is "other" so that a path can never grow the label set.
_REPO_FAMILIES = frozenset(
    {
        "actions", "branches", "check-runs", "check-suites", "collaborators", "comments",
        "commits", "compare", "contents", "git", "hooks", "installation", "issues", "labels",
        "merges", "pulls", "releases", "statuses",
    }
)  # fmt: skip
_TOP_FAMILIES = frozenset(
    {"app", "app-manifests", "installation", "graphql", "orgs", "rate_limit", "repos", "user"}
)
_REPO_PATH = re.compile(r"^repos/[^/]+/[^/]+(?:/([^/]+))?")


def route_family(path: str, base_path: str = "/") -> str:
    """`/repos/o/r/issues/3/comments` → `issues`; `/app/installations/1/access_tokens` →
    `app`; `base_path` is the API's own prefix (`/api/v3/` on GitHub Enterprise)."""
    rest = path[len(base_path) :] if path.startswith(base_path) else path.lstrip("/")
    match = _REPO_PATH.match(rest)
    if match:
        family = match.group(1) or "repo"
        return family if family in _REPO_FAMILIES or family == "repo" else "other"
    first = rest.split("/", 1)[0]
    return first if first in _TOP_FAMILIES else "other"
