"""Defaults of the Bitrix24 source: the API's fixed numbers and the client's safety margins."""

PAGE_SIZE = 50                  # fixed by Bitrix24
MAX_BATCH = 50                  # commands in one `batch`
# Batches in the air at once. A live portal spends 1.5-3.5 s on a batch of 50 list pages (recorded), so one
# at a time leaves the request bucket (2/s) idle; four keep a big table's id ranges moving together while a
# method's operating time (480 s per 10 minutes) still lasts about two minutes of full speed.
BATCHES_IN_FLIGHT = 4
REQUEST_TIMEOUT = 40.0          # seconds; well under the portal's 60 s request cap
MAX_ATTEMPTS = 8                # tries of one HTTP request before giving up
PREFLIGHT_ATTEMPTS = 3          # the first request of a run: a wrong or dead URL fails within seconds
BACKOFF_BASE = 0.5              # seconds, doubled per retry, with full jitter
BACKOFF_MAX = 30.0

# The portal's request bucket (limits.md): standard plans 2/s with a burst of 50; Enterprise 5/250.
PLAN_LIMITS = {"standard": (2.0, 50), "enterprise": (5.0, 250)}
BUCKET_SAFETY = 0.9             # use this share of the burst so other apps on the IP keep some room

OPERATING_LIMIT = 480.0         # seconds per method per 10 minutes (cloud default)
OPERATING_SAFETY = 0.85         # pause a method at this share of the budget
OPERATING_WINDOW = 600.0

# Counting `total` is what costs a portal time (huge-data.md: 49.9 s for 2,387,743 items, 0.1 s without the
# count): about 21 microseconds a row. The deletion count between sweeps (paging.count_due) keeps within both
# the request timeout and a share of each method's operating time.
COUNT_SECONDS_PER_ROW = 49.9 / 2_387_743
COUNT_SECONDS_PER_REFRESH = REQUEST_TIMEOUT / 2   # all of one refresh's counts; a bigger table is left to the sweep
COUNT_BUDGET_SHARE = 0.1                          # of OPERATING_LIMIT per OPERATING_WINDOW, per method
# A batch runs its commands one after another: its pages (PAGE_SECONDS each) and its counting take at most this much
# of the portal's time, the counts left over counted side by side in the other batches in flight (a 20,000-deal
# portal's counts take about 10 s of the portal's time).
COUNT_SECONDS_PER_BATCH = 1.5
PAGE_SECONDS = 0.04             # a list page, from the recorded 1.5-3.5 s for a batch of 50

OVERLAP_SECONDS = 300           # incremental windows re-read this much before the stored cursor
SWEEP_EVERY_HOURS = 24.0        # id-only deletion sweep cadence
SWEEP_STATE_KEY = "last_sweep_at"   # in the source's dlt state: when the warehouse last knew every id
