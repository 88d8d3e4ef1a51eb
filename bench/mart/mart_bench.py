"""Mart benchmark: what the form of `transaction_id` costs PostgreSQL.

  bench/mart/run [--rows N] [--rounds R] [--batch B] [--build DIR]

The interface names the rows of an upload that carry no id of their own, and the id is the
primary key of the mart's `transactions` table (sql/migrations). Each round loads the same N
rows (default 2,000,000) into a fresh copy of the table twice, in transactions of B rows
(default 2000, db_writer's BATCH_SIZE), once with random ids (UUID version 4) and once with
time-ordered ids (UUID version 7, from src/core/fs_uuid7.c by mart_ids), alternating which goes
first. The rows are an upload's (upload_id and upload_row set, uploads of 262,144 rows, the
size of test.csv), so the partial index on them is maintained as for every row the interface
names. It prints, for each load, the CPU of all of PostgreSQL's processes (utime + stime of
the server and its children, from /proc) per 1000 rows, the WAL written per row and the
full-page images, and the ratio v4 / v7 of each round and its median. The rows are loaded
with COPY ... FROM STDIN in text form (db_writer sends binary: the per-row parse differs, the
index and heap work compared here does not). Not a test: nothing is asserted.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid

import psycopg

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from proc_cpu import proc_table, tree_cpu  # noqa: E402
COLUMNS = ("transaction_id", "score", "fraud_flag", "transaction_time", "amount", "merchant",
           "category", "customer_name", "city", "us_state", "upload_id", "upload_row")
UPLOAD_ROWS = 262144  # rows per upload: the size of the competition's test.csv


def v7_ids(mart_ids, n, start_ms):
    """n ids from the interface's generator (mart_ids: fs_uuid7_next), 150 a millisecond
    from start_ms, about the rate the interface names an upload's rows at."""
    out = subprocess.run([mart_ids, str(n), "150", str(start_ms)], check=True,
                         stdout=subprocess.PIPE, text=True).stdout.split()
    if len(out) != n:
        raise RuntimeError(f"mart_ids gave {len(out)} ids of {n}")
    return out


def rows(n):
    """The other columns, like an uploaded row's: a few hundred merchants and customers, and
    the upload's id and the row's place in it (uploaded rows are the ones the interface
    names, so its partial index on them is maintained too)."""
    cats = ("grocery_pos", "shopping_net", "misc_pos", "gas_transport", "home", "kids_pets")
    uploads = [str(uuid.uuid4()) for _ in range(n // UPLOAD_ROWS + 1)]
    return [(f"{(i * 7919) % 10007 / 10007:.6f}", "1" if i % 97 == 0 else "0",
             f"2020-06-21 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}",
             f"{(i * 31) % 20000 / 100:.2f}", f"fraud_Merchant {i % 700}", cats[i % 6],
             f"Customer {i % 1000}", "Columbia", "SC", uploads[i // UPLOAD_ROWS],
             str(i % UPLOAD_ROWS + 1)) for i in range(n)]


def load(conn, pg_pid, ids, data, batch):
    conn.execute("DROP TABLE IF EXISTS transactions")
    for name in sorted(os.listdir(os.path.join(ROOT, "sql/migrations"))):
        with open(os.path.join(ROOT, "sql/migrations", name)) as f:
            conn.execute(f.read())
    conn.execute("CHECKPOINT")
    wal0, fpi0 = conn.execute("SELECT wal_bytes, wal_fpi FROM pg_stat_wal").fetchone()
    c0, t0 = tree_cpu(proc_table(), pg_pid), time.monotonic()
    cur = conn.cursor()
    for at in range(0, len(ids), batch):
        with conn.transaction():
            with cur.copy(f"COPY transactions ({', '.join(COLUMNS)}) FROM STDIN") as cp:
                for k in range(at, min(at + batch, len(ids))):
                    cp.write_row((ids[k],) + data[k])
    secs, cpu = time.monotonic() - t0, tree_cpu(proc_table(), pg_pid) - c0
    wal1, fpi1 = conn.execute("SELECT wal_bytes, wal_fpi FROM pg_stat_wal").fetchone()
    n = conn.execute("SELECT count(*) FROM transactions").fetchone()[0]
    if n != len(ids):
        raise RuntimeError(f"{n} rows stored of {len(ids)}")
    return dict(cpu=cpu * 1e6 / n, wal=(wal1 - wal0) / n, fpi=fpi1 - fpi0, secs=secs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid-file", required=True, help="the server's postmaster.pid")
    ap.add_argument("--rows", type=int, default=2000000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    mart_ids = os.path.join(a.build, "bench/mart/mart_ids")
    if not os.access(mart_ids, os.X_OK):
        ap.error(f"no {mart_ids} (run scripts/build)")
    with open(a.pid_file) as f:
        pg_pid = int(f.readline())
    cpu_model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                      if line.startswith("model name")), "unknown")
    print(f"bench/mart: {a.rows:,} rows per load, {a.rounds} rounds, transactions of "
          f"{a.batch}; CPU: {cpu_model}, {os.cpu_count()} CPUs", flush=True)
    data = rows(a.rows)
    conn = psycopg.connect(f"postgresql://postgres@127.0.0.1:{a.port}/fraud_db",
                           autocommit=True)
    ratios = []
    for r in range(a.rounds):
        ids = {"v4": [str(uuid.uuid4()) for _ in range(a.rows)],
               "v7": v7_ids(mart_ids, a.rows, int(time.time() * 1000))}
        got = {}
        for kind in (("v4", "v7") if r % 2 == 0 else ("v7", "v4")):
            got[kind] = g = load(conn, pg_pid, ids[kind], data, a.batch)
            print(f"round {r + 1}: UUID {kind}: PostgreSQL {g['cpu']:.2f} ms CPU per 1000 rows, "
                  f"WAL {g['wal']:.0f} bytes per row, {g['fpi']:,} full-page images, "
                  f"{g['secs']:.1f} s", flush=True)
        ratios.append(got["v4"]["cpu"] / got["v7"]["cpu"])
        print(f"round {r + 1}: CPU ratio v4 / v7 {ratios[-1]:.2f}", flush=True)
    print(f"CPU ratio v4 / v7 per round: {', '.join(f'{x:.2f}' for x in ratios)}; median "
          f"{statistics.median(ratios):.2f}")
    conn.execute("DROP TABLE transactions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
