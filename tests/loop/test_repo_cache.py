"""A repository's labels through the shared cache: each made once, on first use; and the
PR branches known to require a check."""

from bot.engine.database import Pool
from bot.github.memo import Memo
from bot.github.repo_api import RepoAPI
from bot.labels import (
    FINDING_LABEL,
    LABELS,
    NEEDS_HUMAN_LABEL,
    PEOPLE_LABELS,
    READY_LABEL,
    label_specs,
)
from bot.loop.repo_cache import RepoCache
from tests.fakes.github import FakeGitHub


def cache(api: RepoAPI, pool: Pool) -> RepoCache:
    return RepoCache(api, Memo(pool, 300))


def asked(fake: FakeGitHub, since: int) -> list[tuple[str, str]]:
    return [(r.method, r.url.path.rsplit("/", 1)[-1]) for r in fake.requests[since:]]


async def test_labels_are_made_on_first_use_each_once_and_listed_once(
    fake: FakeGitHub, api: RepoAPI, pool: Pool
) -> None:
    """The labels people set are made first; a label the bot sets costs one create when it
    is first given and nothing after; the repository's labels are listed only once."""
    await cache(api, pool).ensure_labels(label_specs(PEOPLE_LABELS))
    assert asked(fake, 0) == [("GET", "labels")] + [("POST", "labels")] * len(PEOPLE_LABELS)
    assert set(fake.labels) == set(PEOPLE_LABELS)

    before = len(fake.requests)
    await cache(api, pool).ensure_labels(label_specs([FINDING_LABEL, NEEDS_HUMAN_LABEL]))
    await cache(api, pool).ensure_labels(label_specs([FINDING_LABEL, NEEDS_HUMAN_LABEL]))
    await cache(api, pool).ensure_labels(label_specs(PEOPLE_LABELS))
    assert asked(fake, before) == [("POST", "labels")] * 2  # no listing, no repeat
    assert fake.labels[NEEDS_HUMAN_LABEL] == LABELS[NEEDS_HUMAN_LABEL]
    assert READY_LABEL not in fake.labels  # never given, never made


async def test_a_label_a_person_made_is_not_made_again(
    fake: FakeGitHub, api: RepoAPI, pool: Pool
) -> None:
    """Names listed on the first look count as there, whatever their case."""
    fake.labels["Review-Loop:Finding"] = ("000000", "theirs")
    await cache(api, pool).ensure_labels(label_specs(PEOPLE_LABELS))
    before = len(fake.requests)

    await cache(api, pool).ensure_labels(label_specs([FINDING_LABEL]))

    assert asked(fake, before) == []
    assert fake.labels["Review-Loop:Finding"] == ("000000", "theirs")


async def test_labels_other_than_the_bots_are_left_to_github() -> None:
    """`agent:` labels get no spec: GitHub makes them when an issue is given them."""
    assert label_specs([FINDING_LABEL, "agent:ruff-fix"]) == {FINDING_LABEL: LABELS[FINDING_LABEL]}


async def test_the_labels_known_outlive_the_caches_ttl(
    fake: FakeGitHub, api: RepoAPI, pool: Pool
) -> None:
    """Listed once per deployment, not once per TTL: with the other rows kept for no time at
    all, a later first use still neither lists the labels nor makes one again."""
    await cache(api, pool).ensure_labels(label_specs(PEOPLE_LABELS))
    before = len(fake.requests)

    expired = RepoCache(api, Memo(pool, 0))
    await expired.ensure_labels(label_specs([*PEOPLE_LABELS, FINDING_LABEL]))
    await expired.ensure_labels(label_specs([FINDING_LABEL]))

    assert asked(fake, before) == [("POST", "labels")]  # the finding label, made once


async def test_a_branch_that_requires_a_check_is_remembered_per_branch_for_the_ttl(
    fake: FakeGitHub, api: RepoAPI, pool: Pool
) -> None:
    """A merge refused for a missing required check is remembered for that PR branch only,
    and for the TTL only (a protection lifted in Settings is seen when it ends); asking
    costs no request."""
    before = len(fake.requests)
    assert not await cache(api, pool).requires_check("change")

    await cache(api, pool).remember_requires_check("change")

    assert await cache(api, pool).requires_check("change")
    assert not await cache(api, pool).requires_check("other")
    assert not await RepoCache(api, Memo(pool, 0)).requires_check("change")
    assert asked(fake, before) == []
