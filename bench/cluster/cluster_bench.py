"""Cluster benchmark: end-to-end throughput on 3 brokers against 1 broker, in the same run.

  bench/cluster/run [--count M] [--rounds R] [--rows N] [--build DIR] [--model-dir DIR]
                    [--keep]

Starts two stacks with scripts/stack, side by side for the whole run (each in its own
temporary STACK_DIR, always torn down): one broker (Kafka 127.0.0.1:27092, PostgreSQL 27432,
metrics 27001/27002) and STACK_BROKERS=3 (Kafka 127.0.0.1:27192/27194/27196, replication
factor 3, min.insync.replicas 2; PostgreSQL 27532, metrics 27101/27102); each with its own
fraud_detector and db_writer. Every broker runs SerialGC (the single one too, unlike the
local stack's default), so the ratio measures the topology. After one warm-up pass on each
(not timed), R rounds alternate
1 broker and 3 brokers, so both see the same machine: fd_load produce (bench/pipeline; acks=all,
idempotent, keyed by customer) sends M transactions to `transactions` as fast as the cluster
takes them; throughput = M / (first produce -> db_writer has stored all M rows, from its
/metrics counter, checked with count(*)). Prints each round, the median of each, the ratio
3/1 per round and its median, the CPU time per 1000 transactions of each stack's processes,
and the CPU model. Not a test: nothing is asserted.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
sys.path.insert(0, os.path.join(ROOT, "tests/streaming"))
sys.path.insert(0, os.path.join(ROOT, "bench/pipeline"))
import streamlib as sl  # noqa: E402
from pipeline_bench import Cpu, cpu_model, loadavg, read_pid, wait_ready  # noqa: E402

STACKS = {
    # The single broker on the cluster nodes' collector (SerialGC; the local stack's own
    # default is Shenandoah), so the ratio measures the topology, not the collector;
    # KAFKA_GC_OPTS / KAFKA_HEAP_OPTS in the environment still choose for both.
    1: dict(KAFKA_PORT="27092", KAFKA_CONTROLLER_PORT="27093", PG_PORT="27432",
            DETECTOR_METRICS_PORT="27001", WRITER_METRICS_PORT="27002", UI_PORT="27003",
            STACK_BROKERS="1",
            KAFKA_GC_OPTS=os.environ.get("KAFKA_GC_OPTS", "-XX:+UseSerialGC"),
            KAFKA_HEAP_OPTS=os.environ.get("KAFKA_HEAP_OPTS", "-Xms128m -Xmx512m")),
    3: dict(KAFKA_PORT="27192", KAFKA_CONTROLLER_PORT="27193", PG_PORT="27532",
            DETECTOR_METRICS_PORT="27101", WRITER_METRICS_PORT="27102", UI_PORT="27103",
            STACK_BROKERS="3"),
}
PROCS = ("kafka", "fraud_detector", "db_writer", "postgres")


class Stack:
    def __init__(self, brokers, work, build, model_dir):
        self.brokers = brokers
        self.dir = os.path.join(work, f"stack{brokers}")
        ports = STACKS[brokers]
        self.env_vars = dict(os.environ, STACK_DIR=self.dir, STACK_SERVICES="",
                             STACK_SKIP_SETUP="1", STACK_BUILD_DIR=build, **ports)
        kp = int(ports["KAFKA_PORT"])
        self.bootstrap = ",".join(f"127.0.0.1:{kp + 2 * i}" for i in range(brokers))
        self.env = sl.Env(ROOT, build, self.bootstrap, ports["PG_PORT"], model_dir,
                          os.path.join(work, f"logs{brokers}"))
        os.makedirs(self.env.logs, exist_ok=True)
        self.ports = ports
        self.services = []

    def up(self, work):
        log = os.path.join(work, f"stack{self.brokers}-up.log")
        with open(log, "w") as f:
            r = subprocess.run([os.path.join(ROOT, "scripts/stack"), "up"], env=self.env_vars,
                               stdout=f, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            print(open(log).read()[-3000:], file=sys.stderr)
            raise RuntimeError(f"scripts/stack up ({self.brokers} broker(s)) failed")
        self.w = sl.writer(self.env, int(self.ports["WRITER_METRICS_PORT"]))
        self.services.append(self.w)
        self.w.start(wait_ready=False)
        self.d = sl.detector(self.env, int(self.ports["DETECTOR_METRICS_PORT"]),
                             f"bench{self.brokers}")
        self.services.append(self.d)
        self.d.start()
        nodes = ["kafka"] if self.brokers == 1 else [f"kafka-{i + 1}" for i in range(self.brokers)]
        roots = {f"kafka{'' if self.brokers == 1 else i + 1}":
                 (lambda p=os.path.join(self.dir, f"pids/{n}.pid"): read_pid(p))
                 for i, n in enumerate(nodes)}
        roots.update({"fraud_detector": lambda: self.d.proc.pid,
                      "db_writer": lambda: self.w.proc.pid,
                      "postgres": lambda: read_pid(os.path.join(self.dir,
                                                                "pg/data/postmaster.pid"))})
        self.cpu = Cpu(roots)
        self.conn = sl.db_connect(self.env)

    def down(self):
        for s in self.services:
            s.stop()
        subprocess.run([os.path.join(ROOT, "scripts/stack"), "down"], env=self.env_vars,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def end_to_end(self, fd_load, csv_path, n, prefix):
        la = loadavg()
        written0 = self.w.metric("db_writer_rows_written_total") or 0
        load = subprocess.Popen([fd_load, "produce", "--bootstrap", self.bootstrap, "--topic",
                                 "transactions", "--input", csv_path, "--count", str(n),
                                 "--prefix", prefix], stdout=subprocess.PIPE, text=True)
        wait_ready(load)
        c0 = self.cpu.snap()
        done_at = None
        deadline = time.time() + 600
        while time.time() < deadline:
            if (self.w.metric("db_writer_rows_written_total") or 0) >= written0 + n:
                done_at = time.time()
                break
            time.sleep(0.02)
        c1 = self.cpu.snap()
        out = load.stdout.read()
        rc = load.wait()
        got = self.conn.execute("SELECT count(*) FROM transactions WHERE transaction_id "
                                "LIKE %s", (prefix + "%",)).fetchone()[0]
        if rc != 0 or done_at is None or got != n:
            raise RuntimeError(f"{self.brokers} broker(s), {prefix}: load exit {rc}, "
                               f"{got} rows of {n}")
        prod = dict(kv.split("=") for kv in out.split())
        secs = done_at - int(prod["first_us"]) / 1e6
        cpu = Cpu.delta(c0, c1)
        kafka = sum(v for k, v in cpu.items() if k.startswith("kafka"))
        return dict(rate=n / secs, secs=secs, prod=float(prod["rate"]), la=la,
                    cpu={"kafka": kafka, **{k: v for k, v in cpu.items()
                                            if not k.startswith("kafka")}})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rows", type=int, default=50000, help="distinct generated rows (cycled)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--model-dir", default=os.path.join(ROOT, "models/default"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    fd_load = os.path.join(build, "bench/pipeline/fd_load")
    work = tempfile.mkdtemp(prefix="fs-bench-cluster.")
    os.chmod(work, 0o755)  # PostgreSQL runs as user postgres when we are root
    n = a.count
    stacks = {b: Stack(b, work, build, a.model_dir) for b in (1, 3)}
    try:
        print(f"bench/cluster: M={n} transactions, {a.rounds} rounds, {os.cpu_count()} CPUs "
              f"({cpu_model()}), load average {loadavg():.2f}, work dir {work}", flush=True)
        for s in stacks.values():
            t0 = time.monotonic()
            s.up(work)
            print(f"{s.brokers} broker(s) at {s.bootstrap}: up in {time.monotonic() - t0:.0f} s",
                  flush=True)
        csv_path = sl.generate(stacks[1].env, a.rows, 21, os.path.join(work, "bench.csv"))
        for b, s in stacks.items():
            e = s.end_to_end(fd_load, csv_path, n, f"warm{b}-")
            print(f"warm-up (not counted), {b} broker(s): {e['rate']:,.0f} tx/s", flush=True)
        res = {1: [], 3: []}
        for k in range(a.rounds):
            for b in (1, 3) if k % 2 == 0 else (3, 1):
                e = stacks[b].end_to_end(fd_load, csv_path, n, f"r{k}b{b}-")
                res[b].append(e)
                print(f"round {k + 1}, {b} broker(s): end to end {e['rate']:,.0f} tx/s "
                      f"({e['secs']:.2f} s; producer alone {e['prod']:,.0f} msg/s; load "
                      f"average {e['la']:.2f})", flush=True)
        ratios = [e3["rate"] / e1["rate"] for e1, e3 in zip(res[1], res[3])]
        m1 = statistics.median(e["rate"] for e in res[1])
        m3 = statistics.median(e["rate"] for e in res[3])
        print(f"end to end, median: 1 broker {m1:,.0f} tx/s, 3 brokers {m3:,.0f} tx/s")
        print(f"ratio 3 brokers / 1 broker per round: {', '.join(f'{x:.2f}' for x in ratios)}; "
              f"median {statistics.median(ratios):.2f}")
        print("CPU ms per 1000 transactions (utime+stime of each process tree; kafka = all "
              "brokers):")
        print(f"  {'run':<22}" + "".join(f"{k:>16}" for k in PROCS) + f"{'total':>10}")
        for b in (1, 3):
            for k, e in enumerate(res[b]):
                c = e["cpu"]
                print(f"  {f'round {k + 1}, {b} broker(s)':<22}"
                      + "".join(f"{c.get(p, 0) * 1e6 / n:>16.1f}" for p in PROCS)
                      + f"{sum(c.values()) * 1e6 / n:>10.1f}")
        for b, s in stacks.items():
            print(f"{b} broker(s): fraud_detector_transactions_aborted_total "
                  f"{s.d.metric('fraud_detector_transactions_aborted_total')}")
        return 0
    finally:
        for s in stacks.values():
            s.down()
        if a.keep:
            print(f"bench/cluster: work directory kept: {work}")
        else:
            subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    sys.exit(main())
