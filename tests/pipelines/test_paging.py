"""The deletion count (DeletionWalker) against a portal played by a set of live ids: which commands it sends,
level by level, and what it concludes."""

from __future__ import annotations

import re
from urllib.parse import unquote

from pipelines.bitrix24.catalogue import BY_NAME
from pipelines.bitrix24.client import BatchResult
from pipelines.bitrix24.paging import DeletionWalker, count_due


def answer(walker: DeletionWalker, portal: set[int], ignore_id_filter: bool = False) -> int:
    """Answers every command the walker has until it is done, as a portal holding `portal` would; returns
    the number of rounds (batches) it took."""
    rounds = 0
    while not walker.done:
        rounds += 1
        commands = walker.commands(50)
        results, totals = {}, {}
        for command in commands:
            text = unquote(command.text)
            kind, ids = command.payload
            if kind == "count":
                low, high = (int(n) for n in re.findall(r"\[[<>]=ID\]=(\d+)", text))
                rows = sorted(i for i in portal if low <= i <= high)
                totals[command.name] = len(rows)
            else:
                rows = sorted(portal)[:50] if ignore_id_filter else sorted(portal & set(ids))
            results[command.name] = [{"ID": str(i)} for i in rows[:50]]
        walker.deliver(commands, BatchResult(results, {}, totals, {}))
    return rounds


def test_nothing_deleted_costs_one_command() -> None:
    known = list(range(1, 5001))
    walker = DeletionWalker(BY_NAME["deals"], known)
    assert answer(walker, set(known)) == 1 and walker.commands_sent == 1 and walker.deleted == set()


def test_deletions_are_found_a_level_per_fifty_fold_split() -> None:
    known = list(range(1, 100_001, 2))                  # 50,000 ids, sparse as real ones are
    deleted = {1, 40_001, 40_003, 99_999}
    walker = DeletionWalker(BY_NAME["activities"], known)
    rounds = answer(walker, set(known) - deleted)
    assert walker.deleted == deleted
    # 50,000 ids: one count; 50 ranges of 1,000 ids; the 3 with deletions in 50 ranges of 20 each (150 commands,
    # 3 batches of 50); one list of each range of 20 with a deletion (3: 40,001 and 40,003 share one)
    assert walker.commands_sent == 1 + 50 + 150 + 3
    assert rounds == 1 + 1 + 3 + 1


def test_an_answer_that_ignored_the_id_filter_marks_nothing() -> None:
    known = list(range(1, 41))
    walker = DeletionWalker(BY_NAME["deals"], known)
    answer(walker, set(range(1, 40)) | {1000}, ignore_id_filter=True)
    assert walker.deleted == set(), "a list that is not the asked ids proves no deletion"


def test_deletions_are_counted_as_often_as_the_count_costs_the_portal_allow() -> None:
    # 21 microseconds a counted row (49.9 s for 2,387,743 items); counts take at most a tenth of a method's
    # 480 s per 10 minutes, so a count of cost c waits c * 600 / 48 s; one refresh's counts at most 20 s.
    now = 1_000_000.0
    assert count_due(2_000, counted_at=now - 1, now=now, allowance=20), "a small table: every refresh"
    assert count_due(200_000, counted_at=None, now=now, allowance=20), "never counted: due"
    assert not count_due(200_000, counted_at=now - 30, now=now, allowance=20), "4.2 s a count: 52 s apart"
    assert count_due(200_000, counted_at=now - 60, now=now, allowance=20)
    assert not count_due(200_000, counted_at=now - 60, now=now, allowance=4), "the refresh's allowance is spent"
    assert not count_due(2_000_000, counted_at=None, now=now, allowance=20), "42 s: only the sweep"
