"""The checks and the per-test data shared by the streaming suite (streaming_test.py) and
the cluster suite (tests/cluster/cluster_test.py): one line per check, the pass/fail
counts, PostgreSQL and `scoring` against `fraudctl score`, the consumer groups' lag, and
generated data whose customers belong to one test only."""
import collections
import json
import os
import signal
import sys
import time
import traceback
import types

import streamlib as sl

PASSED = 0
FAILED = 0


def check(ok, what):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"  ok    {what}", flush=True)
    else:
        FAILED += 1
        print(f"  FAIL  {what}", flush=True)
    return ok


def summary():
    """Prints "N passed, M failed"; returns the exit status (1 if any check failed)."""
    print(f"{PASSED} passed, {FAILED} failed", flush=True)
    return 1 if FAILED else 0


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def exit_on_sigterm():
    """SIGTERM (a timeout, the run script's teardown) raises SystemExit, so the suite's
    `finally` still stops the services it started instead of leaving them holding their
    ports (Python's default for SIGTERM ends the process without unwinding)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def run_tests(tests, only=None):
    """Runs each (name, fn) of tests (those named in only, if given): one that raises shows
    its traceback and counts as a failed check; each logs its duration."""
    for name, fn in tests:
        if only and name not in only:
            continue
        t0 = time.monotonic()
        try:
            fn()
        except Exception:
            traceback.print_exc()
            check(False, f"{name}: raised")
        log(f"{name}: {time.monotonic() - t0:.0f} s")


def compare_scores(env, prefix, exp, n):
    """Checks PostgreSQL holds exactly the n rows of prefix, each with the expected score
    bits and flag; returns the mismatches."""
    rows = sl.db_rows(env, prefix)
    check(len(rows) == n, f"{prefix}: exactly {n} rows in PostgreSQL (found {len(rows)})")
    bad = []
    seen = set()
    for tid, score, flag in rows:
        i = int(tid[len(prefix):])
        seen.add(i)
        want = exp.get(i)
        if want is None or sl.bits(score) != sl.bits(want[0]) or flag != want[1]:
            bad.append((tid, score, flag, want))
    check(len(seen) == n and not bad,
          f"{prefix}: every score equals `fraudctl score` bit for bit, flags equal "
          f"({len(bad)} differ{'; first ' + repr(bad[0]) if bad else ''})")
    return bad


def check_topic_once(env, prefix, n, timeout=60):
    """No duplicates and nothing missing in `scoring` as a read_committed consumer sees it."""
    msgs = sl.read_topic(env, "scoring", match=lambda k: k is not None and k.startswith(prefix),
                         timeout=timeout)
    ids = collections.Counter(json.loads(v)["transaction_id"] for _, v in msgs)
    dups = sum(c - 1 for c in ids.values() if c > 1)
    check(len(msgs) == n and len(ids) == n and dups == 0,
          f"{prefix}: `scoring` (read_committed) has {len(msgs)} messages, {len(ids)} distinct "
          f"ids, {dups} duplicates; expected {n}/{n}/0")


def check_nothing_left(env):
    for group, topic in (("fraud_detector", "transactions"), ("db_writer", "scoring")):
        n = sl.left_behind(env, group, topic)
        check(n == 0, f"group {group} has consumed and committed all of {topic} "
                      f"({n} messages after its committed offsets)")


# Customer key -> the test whose generated data has it. Each test's expected scores and
# state assume its customers start with no history, so no two tests may share a customer.
CUSTOMERS = {}
# Input topic -> the customer keys sent to it (a restored detector must hold all of them).
TOPIC_CUSTOMERS = collections.defaultdict(set)


def data(env, work, name, rows, seed, topic="transactions"):
    """Generates rows with the seed and computes what the services must deliver: .recs (CSV
    rows), .exp (row -> score, flag), .keys (customer keys) and .state (customer -> final
    state, hex, from `fraudctl score --state-out`). Raises if a customer is also another
    test's."""
    path = sl.generate(env, rows, seed, os.path.join(work, f"{name}.csv"))
    state_path = os.path.join(work, f"{name}.state.csv")
    exp = sl.expected_scores(env, path, state_out=state_path)
    recs = sl.read_rows(path)
    if len(recs) != rows or len(exp) != rows:
        raise RuntimeError(f"{name}: generated {len(recs)} rows, scored {len(exp)}")
    keys = {sl.customer_key(r) for r in recs}
    shared = sorted(k for k in keys if k in CUSTOMERS)
    if shared:
        raise RuntimeError(f"{name} (seed {seed}) shares {len(shared)} customers with "
                           f"{sorted({CUSTOMERS[k] for k in shared})}, e.g. {shared[0]!r}: "
                           f"pick another seed")
    for k in keys:
        CUSTOMERS[k] = name
    TOPIC_CUSTOMERS[topic] |= keys
    state = sl.read_state_csv(state_path)
    check(set(state) == keys,
          f"{name}: customer_key() gives the {len(state)} customers of `fraudctl score "
          f"--state-out` ({len(keys)} keys, {len(keys ^ set(state))} differ)")
    return types.SimpleNamespace(recs=recs, exp=exp, keys=keys, state=state)
