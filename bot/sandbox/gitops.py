"""Plumbing on the sandbox's bare repositories: create, read refs and files, real merges."""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SANDBOX_IDENTITY = {"name": "GitHub", "email": "noreply@github.com"}


class GitError(Exception):
    """A git command failed; the message carries its stderr."""


def git(repo: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    result = subprocess.run(
        ["git", "--git-dir", str(repo), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if check and result.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def identity_env(name: str, email: str) -> dict[str, str]:
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }


def init_bare(path: Path, default_branch: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["git", "init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path)],
        check=True,
        capture_output=True,
    )
    git(path, "config", "http.receivepack", "true")


def clone_bare(source: Path, path: Path, branch: str | None = None) -> None:
    """A new bare repository with `source`'s branches and tags (only `branch`, when given),
    standing alone: no remote, as a GitHub fork does not track its parent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    only = ["--single-branch", "--branch", branch] if branch else []
    subprocess.run(
        ["git", "clone", "--quiet", "--bare", *only, str(source), str(path)],
        check=True,
        capture_output=True,
    )
    git(path, "remote", "remove", "origin")
    git(path, "config", "http.receivepack", "true")


def pull_head_ref(number: int) -> str:
    """Where GitHub keeps a pull request's head in its base repository, forks included."""
    return f"refs/pull/{number}/head"


def fetch_commit(repo: Path, source: Path, sha: str) -> None:
    """Copy commit `sha` and its history from `source` (a fork in the same network) into `repo`:
    GitHub's forks share their objects, the sandbox's bare repositories do not."""
    if source != repo:
        git(repo, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", str(source), sha)


def set_pull_head(repo: Path, number: int, sha: str) -> None:
    git(repo, "update-ref", pull_head_ref(number), sha)


def commit_directory(
    repo: Path, source: Path, branch: str, message: str, author: tuple[str, str]
) -> str:
    """Commit every file under `source` (respecting its .gitignore) as the branch's first commit."""
    with tempfile.TemporaryDirectory() as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index"), "GIT_WORK_TREE": str(source)}
        git(repo, "add", "--all", ".", env=env)
        tree = git(repo, "write-tree", env=env).strip()
    sha = git(repo, "commit-tree", tree, "-m", message, env=identity_env(*author)).strip()
    git(repo, "update-ref", f"refs/heads/{branch}", sha)
    return sha


def branch_heads(repo: Path) -> dict[str, str]:
    out = git(repo, "for-each-ref", "refs/heads", "--format=%(refname:short) %(objectname)")
    return dict(line.split(" ", 1) for line in out.splitlines() if line)


def resolve(repo: Path, ref: str) -> str | None:
    """The commit sha `ref` (branch, tag or sha) names, or None."""
    out = git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return out.strip() or None


def object_type(repo: Path, spec: str) -> str | None:
    out = git(repo, "cat-file", "-t", spec, check=False).strip()
    return out or None


def read_blob(repo: Path, spec: str) -> bytes:
    result = subprocess.run(
        ["git", "--git-dir", str(repo), "cat-file", "blob", spec],
        capture_output=True,
        check=True,
    )
    return result.stdout


def object_sha(repo: Path, spec: str) -> str:
    return git(repo, "rev-parse", spec).strip()


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    type: str
    sha: str
    size: int
    name: str


def list_tree(repo: Path, spec: str) -> list[TreeEntry]:
    entries = []
    for line in git(repo, "ls-tree", "--long", spec).splitlines():
        meta, name = line.split("\t", 1)
        mode, type_, sha, size = meta.split()
        entries.append(TreeEntry(mode, type_, sha, 0 if size == "-" else int(size), name))
    return entries


@dataclass(frozen=True)
class DiffStats:
    commits: int
    additions: int
    deletions: int
    changed_files: int


def diff_stats(repo: Path, base: str, head: str) -> DiffStats:
    commits = int(git(repo, "rev-list", "--count", f"{base}..{head}").strip() or 0)
    additions = deletions = files = 0
    for line in git(repo, "diff", "--numstat", f"{base}...{head}").splitlines():
        added, deleted, _ = line.split("\t", 2)
        files += 1
        additions += int(added) if added.isdigit() else 0
        deletions += int(deleted) if deleted.isdigit() else 0
    return DiffStats(commits, additions, deletions, files)


def merged_tree(repo: Path, base: str, head: str) -> str | None:
    """The tree of merging `head` into `base`, or None when they conflict."""
    result = subprocess.run(
        ["git", "--git-dir", str(repo), "merge-tree", "--write-tree", base, head],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 1:
        return None
    if result.returncode != 0:
        raise GitError(f"git merge-tree: {result.stderr.strip()}")
    return result.stdout.splitlines()[0].strip()


def commit_merge(
    repo: Path,
    *,
    branch: str,
    base_sha: str,
    tree: str,
    parents: list[str],
    message: str,
    author: tuple[str, str],
) -> str | None:
    """Write a commit of `tree` and move `branch` to it unless it moved since `base_sha`."""
    args = ["commit-tree", tree, "-m", message]
    for parent in parents:
        args += ["-p", parent]
    sha = git(repo, *args, env=identity_env(*author)).strip()
    git(repo, "update-ref", f"refs/heads/{branch}", sha, base_sha, check=False)
    return sha if resolve(repo, branch) == sha else None


ZERO_SHA = "0" * 40
PUSH_COMMITS_LISTED = 20  # GitHub lists at most this many commits in a push webhook


@dataclass(frozen=True)
class PushedCommit:
    sha: str
    tree: str
    message: str
    timestamp: str  # ISO 8601, as git records it
    author: tuple[str, str]  # name, email
    committer: tuple[str, str]
    added: list[str]
    removed: list[str]
    modified: list[str]


def pushed_commits(repo: Path, before: str, after: str, *, since: str | None) -> list[PushedCommit]:
    """The commits a push of `after` over `before` brought, oldest first, as GitHub lists them
    in a push webhook (the last 20); for a new branch, those after `since` (the default
    branch's head) when given."""
    start = since if before == ZERO_SHA else before
    span = f"{start}..{after}" if start else after
    shas = git(repo, "rev-list", "--reverse", span).split()[-PUSH_COMMITS_LISTED:]
    commits = []
    for sha in shas:
        fields = git(
            repo, "show", "-s", "--format=%T%x00%aI%x00%an%x00%ae%x00%cn%x00%ce%x00%B", sha
        )
        tree, stamp, a_name, a_mail, c_name, c_mail, message = fields.split("\x00", 6)
        changes: dict[str, list[str]] = {"A": [], "D": [], "M": []}
        status = git(repo, "diff-tree", "--no-commit-id", "--name-status", "-r", "--root", sha)
        for line in status.splitlines():
            kind, _, path = line.partition("\t")
            changes.get(kind[:1], changes["M"]).append(path.split("\t")[-1])
        commits.append(
            PushedCommit(
                sha=sha,
                tree=tree,
                message=message.rstrip("\n"),
                timestamp=stamp,
                author=(a_name, a_mail),
                committer=(c_name, c_mail),
                added=changes["A"],
                removed=changes["D"],
                modified=changes["M"],
            )
        )
    return commits


def is_ancestor(repo: Path, older: str, newer: str) -> bool:
    """Whether `older` is in the history of `newer` (a push over it was not forced)."""
    result = subprocess.run(
        ["git", "--git-dir", str(repo), "merge-base", "--is-ancestor", older, newer],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0
