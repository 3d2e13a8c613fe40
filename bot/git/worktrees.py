"""Bare mirrors per repository and one git worktree per task, with locking, leases and cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bot.git.cmd import GitError, auth_env, git

# Remote branches land under refs/remotes/origin/ so that fetches never collide with the task
# branches that worktrees have checked out under refs/heads/ (git refuses to fetch into those).
FETCH_REFSPEC = "+refs/heads/*:refs/remotes/origin/*"
MIRROR_CONFIG = """\
[core]
\trepositoryformatversion = 0
\tfilemode = true
\tbare = true
[remote "origin"]
\turl = {url}
\tfetch = {fetch}
[gc]
\tautoDetach = false
"""
LEASE_FILE = "review-loop-lease"
SETUP_OUTPUT_FILE = "review-loop-setup-output"  # in a worktree's git dir, beside the lease
_REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
# What `git worktree add` says when metadata of a worktree that is gone stands in its way:
# its path is still registered, or its branch is still checked out there.
_STALE_METADATA = re.compile(
    r"missing but (already registered|locked) worktree|already (checked out|used by worktree)"
)


@dataclass(frozen=True)
class SpawnTimings:
    """Where the seconds of one worktree spawn went (the planner's measured spawn cost s)."""

    fetch_s: float = 0.0
    lock_wait_s: float = 0.0
    add_s: float = 0.0
    checkout_s: float = 0.0

    @property
    def worktree_s(self) -> float:
        return self.lock_wait_s + self.add_s + self.checkout_s

    @property
    def total_s(self) -> float:
        return self.fetch_s + self.worktree_s


@dataclass(frozen=True)
class Worktree:
    """A task's checkout: its directory, its branch, the commit it started from."""

    path: Path
    branch: str
    base_sha: str
    mirror: Path
    holder: str = ""
    timings: SpawnTimings = field(default_factory=SpawnTimings)


@dataclass(frozen=True)
class WorktreeHolder:
    """Who holds a worktree: written when it is created, checked before cleanup."""

    holder: str
    host: str
    pid: int

    def is_live(self) -> bool:
        """True while the holding process runs (a lease from another host counts as live)."""
        if self.host != socket.gethostname():
            return True
        if self.pid == os.getpid():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class Mirrors:
    """The bare mirrors under `root`, the worktrees made from them and the trash they go to."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.trash = root / "trash"
        self._locks: dict[Path, asyncio.Lock] = {}
        # Seconds the last fetch of each mirror took, for spawn-cost accounting.
        self.fetch_seconds: dict[Path, float] = {}

    def mirror_path(self, full_name: str) -> Path:
        """Where the mirror of `owner/name` lives."""
        if not _REPO_NAME.match(full_name) or ".." in full_name:
            raise ValueError(f"not a repository name of the form owner/name: {full_name!r}")
        owner, name = full_name.split("/")
        return self.root / "mirrors" / owner / f"{name}.git"

    def worktree_path(self, full_name: str, task: str) -> Path:
        """A conventional directory for one task's worktree of `owner/name`."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", task) or task in {".", ".."}:
            raise ValueError(f"task id must be a plain file name: {task!r}")
        owner, name = full_name.split("/")
        return self.root / "worktrees" / f"{owner}__{name}" / task

    def lock_file(self, mirror: Path) -> Path:
        """The file whose flock guards `mirror` across processes."""
        return mirror.with_name(mirror.name + ".lock")

    @contextlib.asynccontextmanager
    async def lock(self, mirror: Path) -> AsyncIterator[None]:
        """Hold the mirror's lock: across asyncio tasks (asyncio.Lock) and processes (flock)."""
        async with self._locks.setdefault(mirror, asyncio.Lock()):
            lock_path = self.lock_file(mirror)
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            acquire = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
            try:
                await asyncio.shield(acquire)
            except BaseException:
                # The thread may still get the lock later; closing the fd then releases it.
                acquire.add_done_callback(lambda _: os.close(fd))
                raise
            try:
                yield
            finally:
                os.close(fd)  # releases the flock

    async def ensure(
        self,
        full_name: str,
        url: str,
        token: str | None,
        *,
        want: Sequence[str] = (),
        fresh_since: float | None = None,
    ) -> Path:
        """The bare mirror of `full_name`: created on first use, fetched after.

        With `want`, the fetch is skipped when the mirror already holds every commit of
        `want` and its last fetch started at or after `fresh_since` (wall-clock seconds; None:
        any earlier fetch will do). So the tasks of one PR head share one fetch, and a task
        that waited on the lock for another's fetch finds the commits and goes on."""
        if urlsplit(url).password:
            raise ValueError("the remote URL must not carry credentials; pass the token instead")
        mirror = self.mirror_path(full_name)
        env = auth_env(token, url) if token else None
        started = time.monotonic()
        if want and (mirror / "HEAD").exists():
            _heal(mirror, url)  # before any git command reads the mirror's config
            if await self._current(mirror, want, fresh_since):
                self.fetch_seconds[mirror] = time.monotonic() - started
                return mirror
        async with self.lock(mirror):
            if not (mirror / "HEAD").exists():
                await self._create(mirror)
            _heal(mirror, url)
            if not (want and await self._current(mirror, want, fresh_since)):
                fetching = time.time()
                await git("fetch", "--prune", "--no-tags", "origin", cwd=mirror, env=env)
                _write_atomically(self._fetched_file(mirror), repr(fetching))
            self.fetch_seconds[mirror] = time.monotonic() - started
        return mirror

    def _fetched_file(self, mirror: Path) -> Path:
        """Where the start time of the mirror's last fetch is kept (beside its lock file)."""
        return mirror.with_name(mirror.name + ".fetched")

    async def _current(self, mirror: Path, want: Sequence[str], fresh_since: float | None) -> bool:
        """True when the mirror holds every commit of `want`, fetched after `fresh_since`."""
        if fresh_since is not None:
            try:
                fetched = float(self._fetched_file(mirror).read_text())
            except (OSError, ValueError):
                return False
            if fetched < fresh_since:
                return False
        if any(not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", sha) for sha in want):
            return False  # only full commit ids: a branch name says nothing about freshness
        asked = "".join(f"{sha}^{{commit}}\n" for sha in want).encode()
        answer = await git("cat-file", "--batch-check=%(objectname)", cwd=mirror, input=asked)
        return "missing" not in answer

    async def _create(self, mirror: Path) -> None:
        # Built beside its final place and renamed in, so a crash never leaves half a mirror.
        staging = mirror.with_name(f"{mirror.name}.new-{uuid.uuid4().hex[:8]}")
        staging.parent.mkdir(parents=True, exist_ok=True)
        await git("init", "--bare", "--quiet", str(staging), cwd=staging.parent)
        await git("config", "remote.origin.fetch", FETCH_REFSPEC, cwd=staging)
        await git("config", "gc.autoDetach", "false", cwd=staging)
        staging.rename(mirror)

    async def add_worktree(
        self, mirror: Path, path: Path, branch: str, sha: str, *, holder: str | None = None
    ) -> Worktree:
        """Check out `sha` at `path` on branch `branch` (reset if it exists, so a retry resumes)."""
        if branch.startswith("-") or sha.startswith("-"):
            raise ValueError(f"branch and commit must not start with '-': {branch!r} {sha!r}")
        path = _absolute(path)
        holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        waiting = time.monotonic()
        async with self.lock(mirror):
            locked = time.monotonic()
            if path.exists():
                await self._clear_abandoned(mirror, path)
            # Only git's metadata step is locked; no `worktree prune` here: metadata that a
            # crash or a removal left behind is pruned when git refuses because of it.
            add = ("worktree", "add", "--no-checkout", "-B", branch, str(path), sha)
            try:
                await git(*add, cwd=mirror)
            except GitError as exc:
                if not _STALE_METADATA.search(exc.stderr):
                    raise
                await git("worktree", "prune", cwd=mirror)
                await git(*add, cwd=mirror)
            admin = _linked_admin_dir(path) or await _admin_dir(path)
            lease = WorktreeHolder(holder=holder, host=socket.gethostname(), pid=os.getpid())
            # Written under the lock: `prune_abandoned` never sees the worktree without its lease.
            (admin / LEASE_FILE).write_text(json.dumps(lease.__dict__))
            added = time.monotonic()
        # Checkout only touches this worktree's own index and files: parallel-safe, lock-free.
        # Sequential, git's default: parallel checkout (`checkout.workers=0`) made a spawn of
        # 2,000 files about 40% slower on 2 cores (docs/benchmarks.md, "Spawn").
        await git("checkout", "-f", "--quiet", cwd=path)
        base_sha = (await git("rev-parse", "HEAD", cwd=path)).strip()
        timings = SpawnTimings(
            fetch_s=self.fetch_seconds.get(mirror, 0.0),
            lock_wait_s=locked - waiting,
            add_s=added - locked,
            checkout_s=time.monotonic() - added,
        )
        return Worktree(path, branch, base_sha, mirror, holder, timings)

    async def _clear_abandoned(self, mirror: Path, path: Path) -> None:
        # A retry after a crash finds the old directory: reuse the place unless someone holds it.
        lease = await _read_lease(path)
        if lease is not None and lease.is_live() and lease.pid != os.getpid():
            raise FileExistsError(f"worktree {path} is held by {lease.holder}")
        if lease is None and not _is_empty_dir(path):
            raise FileExistsError(f"{path} exists and is not a worktree made by review-loop")
        _move_to(path, self.trash)

    async def remove_worktree(self, wt: Worktree, *, delete_branch: bool = True) -> None:
        """Move the worktree into the trash and drop git's metadata (and the local branch)."""
        admin = _admin_dir_of(wt)
        if not await asyncio.to_thread(_move_to, wt.path, self.trash):
            # Another filesystem, so no cheap move: delete in place.
            await asyncio.to_thread(_delete, wt.path)
        async with self.lock(wt.mirror):
            if admin is not None:
                # What `worktree prune` would do for this one worktree, without scanning all.
                await asyncio.to_thread(_delete, admin)
            else:
                await git("worktree", "prune", cwd=wt.mirror)
            if delete_branch:
                with contextlib.suppress(GitError):  # already gone, or re-used by a retry
                    await git("branch", "-D", "--quiet", wt.branch, cwd=wt.mirror)

    async def empty_trash(self, max_entries: int | None = None) -> int:
        """Delete up to `max_entries` trashed worktrees (all by default); return how many."""
        if not self.trash.exists():
            return 0
        entries = sorted(self.trash.iterdir())[:max_entries]
        for entry in entries:
            await asyncio.to_thread(_delete, entry)
        return len(entries)

    async def prune_metadata(self) -> None:
        """`git worktree prune` on every mirror: drop what git keeps of worktrees whose
        directory is gone (a crash mid-removal). The janitor's job, off the spawn path."""
        for mirror in sorted((self.root / "mirrors").glob("*/*.git")):
            async with self.lock(mirror):
                await git("worktree", "prune", cwd=mirror)

    async def prune_abandoned(self) -> list[Path]:
        """Remove the worktrees whose holder process is gone (a worker killed mid-task whose
        task is not run again here); list them. A worktree without a lease, or held by a
        live process (this one, another here, or one on another host), stays."""
        removed: list[Path] = []
        for mirror in sorted((self.root / "mirrors").glob("*/*.git")):
            async with self.lock(mirror):
                listing = await git("worktree", "list", "--porcelain", cwd=mirror)
            for path, branch in _parse_worktree_list(listing):
                if path == mirror.absolute():
                    continue
                lease = await _read_lease(path)
                if lease is None or lease.is_live():
                    continue
                wt = Worktree(path, branch or "", "", mirror)
                await self.remove_worktree(wt, delete_branch=bool(branch))
                removed.append(path)
        return removed


async def commit_all(
    wt: Worktree,
    message: str,
    author_name: str,
    author_email: str,
    *,
    paths: Sequence[str] | None = None,
) -> str | None:
    """Stage everything (with `paths`: those paths only, taken literally) and commit it as
    author and committer; None when nothing changed."""
    if paths is None:
        await git("add", "--all", cwd=wt.path)
    elif paths:
        listed = "\0".join(paths).encode()
        await git(
            "add", "--all", "--pathspec-from-file=-", "--pathspec-file-nul",
            cwd=wt.path, env={"GIT_LITERAL_PATHSPECS": "1"}, input=listed,
        )  # fmt: skip
    if not (await git("diff", "--cached", "--name-only", cwd=wt.path)).strip():
        return None
    await git(
        "-c", "commit.gpgSign=false", "commit", "--quiet", "--no-verify", "--file=-",
        cwd=wt.path, env=_identity_env(author_name, author_email), input=message.encode(),
    )  # fmt: skip
    return (await git("rev-parse", "HEAD", cwd=wt.path)).strip()


async def merge_commit(
    repo: Path, first: str, second: str, message: str, author_name: str, author_email: str
) -> str | None:
    """A merge commit of `first` and `second` (parents in that order, as GitHub's merge
    makes one), as author and committer, made in `repo`'s object store without touching
    any worktree (`git merge-tree --write-tree`, git >= 2.38); its sha, None on a conflict."""
    try:
        out = await git("merge-tree", "--write-tree", "--no-messages", first, second, cwd=repo)
    except GitError as exc:
        if exc.returncode == 1:  # conflicts: the first line is a tree with markers
            return None
        raise
    tree = out.split()[0]
    sha = await git(
        "-c", "commit.gpgSign=false", "commit-tree", tree, "-p", first, "-p", second,
        "-m", message, cwd=repo, env=_identity_env(author_name, author_email),
    )  # fmt: skip
    return sha.strip()


def _identity_env(name: str, email: str) -> dict[str, str]:
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }


async def record_setup_output(path: Path) -> list[str]:
    """Remember what the repository's `setup` left untracked in the worktree at `path` (a
    `.venv` not in .gitignore, say): resets keep it, and it is no part of any change."""
    names = await git("ls-files", "--others", "--exclude-standard", "--directory", "-z", cwd=path)
    entries = sorted(name.rstrip("/") for name in names.split("\0") if name)
    (await _admin_dir(path) / SETUP_OUTPUT_FILE).write_text(json.dumps(entries))
    return entries


async def setup_output(path: Path) -> list[str]:
    """What `record_setup_output` remembered for the worktree at `path` ([] if nothing)."""
    try:
        entries = json.loads((await _admin_dir(path) / SETUP_OUTPUT_FILE).read_text())
    except (OSError, ValueError):
        return []
    return [e for e in entries if isinstance(e, str) and e] if isinstance(entries, list) else []


async def all_but_setup_output(path: Path) -> list[str]:
    """Pathspecs for every file of the worktree at `path` except the setup output."""
    return ["--", ".", *(f":(exclude,literal){entry}" for entry in await setup_output(path))]


def _ignore_pattern(entry: str) -> str:
    """A .gitignore pattern that matches exactly the path `entry` from the top."""
    return "/" + re.sub(r"([\\*?\[\]!# ])", r"\\\1", entry)


async def clean_keeping_setup_output(path: Path) -> None:
    """`git clean -fd`, except for what `setup` left (see `record_setup_output`)."""
    keep = [arg for entry in await setup_output(path) for arg in ("-e", _ignore_pattern(entry))]
    await git("clean", "-fdq", *keep, cwd=path)


@contextlib.asynccontextmanager
async def whole_tree_index(path: Path, prefix: str) -> AsyncIterator[dict[str, str]]:
    """The environment of git commands that see the working tree at `path` staged whole:
    tracked and untracked files, not ignored ones, nor what `setup` left. It stages into a
    private copy of the index, so neither the real index nor any file changes."""
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        index = Path(scratch) / "index"
        real_index = Path((await git("rev-parse", "--git-path", "index", cwd=path)).strip())
        if not real_index.is_absolute():
            real_index = path / real_index
        if real_index.exists():
            # Its stat data spares git re-reading unchanged files; its own mtime must stay,
            # since git re-reads the entries no older than it (a change made in the second
            # the index was written, same size, would pass for unchanged otherwise).
            shutil.copy2(real_index, index)
        env = {"GIT_INDEX_FILE": str(index)}
        await git("add", "--all", *await all_but_setup_output(path), cwd=path, env=env)
        yield env


async def snapshot(path: Path) -> str:
    """The working tree at `path` as a git tree id (as `whole_tree_index` stages it)."""
    async with whole_tree_index(path, "review-loop-snapshot-") as env:
        return (await git("write-tree", cwd=path, env=env)).strip()


async def snapshot_changes(path: Path, before: str, after: str) -> list[str]:
    """The paths that differ between two snapshots of the working tree at `path`."""
    if before == after:
        return []
    names = await git(
        "diff-tree", "-r", "--name-only", "--no-renames", "-z", before, after, cwd=path
    )
    return sorted(p for p in names.split("\0") if p)


async def changed_files(wt: Worktree, since_sha: str) -> list[str]:
    """Paths that differ between `since_sha` and the working tree, untracked files included."""
    diff = await git("diff", "--name-only", "--no-renames", "-z", since_sha, "--", cwd=wt.path)
    untracked = await git("ls-files", "--others", "--exclude-standard", "-z", cwd=wt.path)
    return sorted({p for p in (diff + untracked).split("\0") if p})


async def push(
    wt: Worktree, remote_url: str, token: str | None, branch: str, expected_remote_sha: str | None
) -> None:
    """Push HEAD to `branch` at `remote_url`, only if the remote branch is still as expected.

    `expected_remote_sha` None means the branch must not exist yet. A remote that moved makes
    git refuse ("stale info") and this raises `GitError`.
    """
    await _leased_push(wt.path, remote_url, token, branch, expected_remote_sha, "HEAD")


async def push_commit(
    repo: Path, remote_url: str, token: str | None, branch: str, expected_remote_sha: str, sha: str
) -> None:
    """Push commit `sha` (in `repo`'s object store) to `branch` at `remote_url`, only if the
    branch is still at `expected_remote_sha`: a branch that moved makes git refuse ("stale
    info") and this raises `GitError` (`ref_moved`)."""
    await _leased_push(repo, remote_url, token, branch, expected_remote_sha, sha)


async def delete_branch(
    repo: Path, remote_url: str, token: str | None, branch: str, expected_remote_sha: str
) -> None:
    """Delete `branch` at `remote_url`, only if it is still at `expected_remote_sha` (a branch
    someone else moved is theirs now: git refuses with "stale info" and this raises
    `GitError`). Over git, like the pushes: no REST request. `repo` is where git runs: a
    task's worktree, or the mirror (a deletion sends no commits)."""
    await _leased_push(repo, remote_url, token, branch, expected_remote_sha, "")


async def _leased_push(
    repo: Path,
    remote_url: str,
    token: str | None,
    branch: str,
    expected_remote_sha: str | None,
    source: str,
) -> None:
    """`git push <url> <source>:refs/heads/<branch>` with a lease on the branch being at
    `expected_remote_sha` (None: absent); an empty `source` deletes the branch."""
    if urlsplit(remote_url).password:
        raise ValueError("the remote URL must not carry credentials; pass the token instead")
    ref = f"refs/heads/{branch}"
    lease = f"--force-with-lease={ref}:{expected_remote_sha or ''}"
    env = auth_env(token, remote_url) if token else None
    await git(
        "push", "--no-verify", "--quiet", lease, remote_url, f"{source}:{ref}", cwd=repo, env=env
    )


def _heal(mirror: Path, url: str) -> None:
    """Rewrite the mirror's config and drop any hook. Agents, setup and test commands run in
    worktrees of this mirror, and a worktree's `git config` writes the mirror's config: a key
    planted there (`core.fsmonitor`, `url.*.insteadOf`, a credential helper) would act on the
    bot's next git command. The bot keeps nothing else in it."""
    if any(c in url for c in "\n\r\0"):
        raise ValueError(f"not a remote URL: {url!r}")
    quoted = '"' + url.replace("\\", "\\\\").replace('"', '\\"') + '"'
    # Replaced whole, never truncated in place: git commands of other tasks read it meanwhile.
    _write_atomically(mirror / "config", MIRROR_CONFIG.format(url=quoted, fetch=FETCH_REFSPEC))
    hooks = mirror / "hooks"
    if hooks.is_dir():
        for hook in hooks.iterdir():
            if hook.name.endswith(".sample"):
                continue
            if hook.is_dir() and not hook.is_symlink():
                _delete(hook)
            else:
                hook.unlink(missing_ok=True)  # another task may be healing it too


def _write_atomically(path: Path, text: str) -> None:
    staging = path.with_name(f"{path.name}.new-{uuid.uuid4().hex[:8]}")
    staging.write_text(text)
    os.replace(staging, path)


def _linked_admin_dir(path: Path) -> Path | None:
    """The admin directory a linked worktree's `.git` file names (None if it names none),
    read without starting git."""
    try:
        pointer = (path / ".git").read_text()
    except (OSError, ValueError):
        return None
    if not pointer.startswith("gitdir: "):
        return None
    admin = Path(pointer.removeprefix("gitdir: ").strip())
    return (admin if admin.is_absolute() else path / admin).resolve()


def _admin_dir_of(wt: Worktree) -> Path | None:
    """The worktree's own directory under the mirror's `worktrees/`; None unless it points
    back at this worktree (an agent may have rewritten the `.git` file: then another
    worktree's metadata must not be touched)."""
    admin = _linked_admin_dir(wt.path)
    if admin is None or admin.parent != (wt.mirror / "worktrees").resolve():
        return None
    try:
        back = Path((admin / "gitdir").read_text().strip())
    except (OSError, ValueError):
        return None
    return admin if back.resolve() == (wt.path / ".git").resolve() else None


async def _admin_dir(path: Path) -> Path:
    gitdir = (await git("rev-parse", "--absolute-git-dir", cwd=path)).strip()
    return Path(gitdir)


async def _read_lease(path: Path) -> WorktreeHolder | None:
    try:
        admin = await _admin_dir(path)
        data = json.loads((admin / LEASE_FILE).read_text())
        return WorktreeHolder(
            holder=str(data["holder"]), host=str(data["host"]), pid=int(data["pid"])
        )
    except (GitError, OSError, ValueError, KeyError, TypeError):
        return None


def _parse_worktree_list(porcelain: str) -> list[tuple[Path, str | None]]:
    """(path, branch) for each entry of `git worktree list --porcelain`."""
    result: list[tuple[Path, str | None]] = []
    for block in porcelain.strip().split("\n\n"):
        fields = dict(line.partition(" ")[::2] for line in block.splitlines() if line)
        if "worktree" not in fields or "bare" in fields:
            continue
        branch = fields.get("branch", "").removeprefix("refs/heads/") or None
        result.append((Path(fields["worktree"]), branch))
    return result


def _absolute(path: Path) -> Path:
    return path.absolute()


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _move_to(path: Path, trash: Path) -> bool:
    """Move `path` into `trash` under a unique name; False when a rename cannot do it."""
    if not path.exists():
        return True
    trash.mkdir(parents=True, exist_ok=True)
    try:
        path.rename(trash / f"{path.name}-{uuid.uuid4().hex[:8]}")
    except OSError:
        return False
    return True


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
