"""The deletion count (DeletionWalker) against a portal played by a set of live ids: which commands it sends,
level by level, and what it concludes; and how the scheduler spreads a big portal's counts over the batches
in flight."""

from __future__ import annotations

import re
import threading
import time
from urllib.parse import unquote

from pipelines.bitrix24 import settings
from pipelines.bitrix24.catalogue import BY_NAME
from pipelines.bitrix24.client import BatchResult
from pipelines.bitrix24.paging import DeletionWalker, KeysetWalker, Scheduler, count_cost, count_due, deletion_walkers


def answer(walker: DeletionWalker, portal: set[int], ignore_id_filter: bool = False) -> int:
    """Answers every command the walker has until it is done, as a portal holding `portal` would; returns
    the number of rounds (batches) it took."""
    rounds = 0
    while not walker.done:
        rounds += 1
        commands = walker.commands(50)
        walker.deliver(commands, answers(portal, {c.name: c.text for c in commands}, ignore_id_filter))
    return rounds


def answers(portal: set[int], commands: dict[str, str], ignore_id_filter: bool = False) -> BatchResult:
    """A batch's answer from a portal holding `portal`: each count's `total`, each listing's rows."""
    results, totals = {}, {}
    for name, text in commands.items():
        bounds = [int(n) for n in re.findall(r"\[[<>]=ID\]=(\d+)", unquote(text))]
        if bounds:
            rows = sorted(i for i in portal if bounds[0] <= i <= bounds[1])
            totals[name] = len(rows)
        else:
            asked = {int(n) for n in re.findall(r"\[@ID\]\[\d*\]=(\d+)", unquote(text))}
            rows = sorted(portal)[:50] if ignore_id_filter else sorted(portal & asked)
        results[name] = [{"ID": str(i)} for i in rows[:50]]
    return BatchResult(results, {}, totals, {})


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


def test_a_big_tables_count_is_sliced_to_fit_a_batch() -> None:
    known = list(range(1, 440_001, 2))                  # 220,000 activities: 4.6 s of the portal's time to count
    walkers = deletion_walkers(BY_NAME["activities"], known, reported=[7])
    assert len(walkers) == 4, "4.6 s of counting in slices of at most 1.5 s"
    assert [i for w in walkers for ids in w.to_count for i in ids] == known, "every id in one slice, in order"
    assert all(w.counting_seconds() <= settings.COUNT_SECONDS_PER_BATCH for w in walkers)
    assert [len(w.to_list) for w in walkers] == [1, 0, 0, 0], "the reported ids are listed once"
    assert len(deletion_walkers(BY_NAME["deals"], list(range(1, 2001)))) == 1, "a small table: one count"
    only_reported = deletion_walkers(BY_NAME["deals"], (), reported=[5, 6])
    assert len(only_reported) == 1 and not only_reported[0].counting and only_reported[0].to_list == [[5, 6]]
    assert deletion_walkers(BY_NAME["deals"], ()) == []


class CountingPortal:
    """A portal client for the scheduler: answers as a portal holding `live` ids per method would, and
    records each batch's counting (its counts' ids at the portal's cost per counted row) and how many batches
    were answered at once."""

    def __init__(self, live: dict[str, set[int]]) -> None:
        self.live = live
        self.batch_seconds: list[float] = []
        self.at_once = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def wait_for(self, method: str) -> float:
        return 0.0

    def batch(self, commands: dict[str, str]) -> BatchResult:
        with self._lock:
            self.at_once += 1
            self.most_at_once = max(self.most_at_once, self.at_once)
        time.sleep(0.2)     # the portal working on it: the other batches in flight arrive meanwhile
        counted = 0
        results, errors, totals = {}, {}, {}
        for name, text in commands.items():
            answer = answers(self.live[text.split("?")[0]], {name: text})
            results.update(answer.results)
            totals.update(answer.totals)
            counted += answer.totals.get(name, 0)
        with self._lock:
            self.at_once -= 1
            self.batch_seconds.append(count_cost(counted))
        return BatchResult(results, errors, totals, {})


def test_a_big_portals_counts_are_counted_side_by_side_in_batches_of_bounded_time() -> None:
    """At 20,000 deals a refresh's counts take about 10 s of the portal's time. A batch runs its commands one
    after another, so in one batch they took 10 s; sliced, at most 1.5 s a batch, four batches in flight."""
    sizes = {"activities": 220_000, "deal_stage_history": 76_000, "deals": 20_000, "contacts": 17_500,
             "companies": 4_700, "tasks": 23_000}
    known = {name: list(range(1, 2 * rows, 2)) for name, rows in sizes.items()}
    gone = {"activities": {9, 300_001}, "deals": {39_999}}
    portal = CountingPortal({BY_NAME[name].method: set(ids) - gone.get(name, set()) for name, ids in known.items()})
    scheduler = Scheduler(portal)   # type: ignore[arg-type]
    walkers = {name: [scheduler.register(w) for w in deletion_walkers(BY_NAME[name], ids)]
               for name, ids in known.items()}
    while not all(w.done for group in walkers.values() for w in group):
        scheduler.pump()
    found = {name: set().union(*(w.deleted for w in group)) for name, group in walkers.items()}
    assert found == {name: gone.get(name, set()) for name in sizes}
    first_round = portal.batch_seconds[:settings.BATCHES_IN_FLIGHT]
    assert max(first_round) <= settings.COUNT_SECONDS_PER_BATCH + 1e-9, first_round
    assert sum(first_round) > 2 * settings.COUNT_SECONDS_PER_BATCH, "the first batches counted most of it"
    assert portal.most_at_once == settings.BATCHES_IN_FLIGHT, "counted side by side"


class RecordingPortal:
    """A portal holding nothing that records, per batch, its page commands and the portal's seconds its counts
    took (count commands bound an id range: `>=ID` and `<=ID`)."""

    def __init__(self, live: dict[str, set[int]]) -> None:
        self.live = live
        self.batches: list[tuple[int, float]] = []
        self._lock = threading.Lock()

    def wait_for(self, method: str) -> float:
        return 0.0

    def batch(self, commands: dict[str, str]) -> BatchResult:
        time.sleep(0.2)     # the portal working on it: the other batches in flight are sent meanwhile
        results, totals = {}, {}
        for name, text in commands.items():
            answer = answers(self.live.get(text.split("?")[0], set()), {name: text})
            results.update(answer.results)
            totals.update(answer.totals)
        pages = sum(1 for text in commands.values() if ">=ID" not in unquote(text))
        with self._lock:
            self.batches.append((pages, count_cost(sum(totals.values()))))
        return BatchResult(results, {}, totals, {})


def test_an_incremental_refreshs_first_pages_go_out_without_counting_on_top_of_them() -> None:
    """A batch runs its commands one after another. The first pages of every entity in its modification window
    (36 commands: about 1.4 s of a live portal's time) go in one batch; the counts of a big table go beside it, in
    the other batches in flight, not 1.5 s of counting on top of the pages."""
    window = {">=DATE_MODIFY": "2026-11-30T10:00:00"}
    names = ("deals", "leads", "contacts", "companies", "activities", "tasks")
    known = list(range(1, 440_001, 2))                  # 220,000 activities: four slices of 1.15 s
    portal = RecordingPortal({BY_NAME["activities"].method: set(known)})
    scheduler = Scheduler(portal)   # type: ignore[arg-type]
    pages = [scheduler.register(KeysetWalker(BY_NAME[name], ["ID"], {**window, "<ID": cut}))
             for name in names for cut in (10**6, 2 * 10**6)]
    counts = [scheduler.register(w) for w in deletion_walkers(BY_NAME["activities"], known)]
    assert sum(w.wants() for w in pages) * settings.PAGE_SECONDS > settings.COUNT_SECONDS_PER_BATCH - min(
        w.counting_seconds() for w in counts), "no slice fits beside the pages"
    while not all(w.done for w in (*pages, *counts)):
        scheduler.pump()
    first_round = portal.batches[:settings.BATCHES_IN_FLIGHT]
    with_pages = [(n, seconds) for n, seconds in first_round if n]
    assert with_pages == [(36, 0.0)], first_round
    assert sorted(seconds > 0 for _, seconds in first_round) == [False, True, True, True], "counted beside them"
    assert all(w.deleted == set() for w in counts)
