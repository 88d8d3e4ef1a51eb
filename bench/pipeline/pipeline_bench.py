"""Pipeline benchmark: M transactions through the real stack (Kafka, fraud_detector,
db_writer, PostgreSQL), all on this machine.

  bench/pipeline/run [--count M] [--rounds R] [--build DIR] [--model-dir DIR] [--keep]
                     [--detector-env NAME=VALUE ...] [--writer-env NAME=VALUE ...]
                     [--load-opt name=value ...] [--upload-headers] [--poll metric|sql]

Starts its own stack with scripts/stack (Kafka 127.0.0.1:26092/26093, PostgreSQL 26432,
metrics 26001/26002, all moved by BENCH_PORT_BASE=N (default 26000), a temporary STACK_DIR;
always torn down), starts fraud_detector and
db_writer once, and then, in the same run:
 0. warm-up (not timed): one ceiling pass, then end-to-end passes of M messages until the
    broker's JIT compiler threads used at most --jit-settled (0.5) CPU ms per 1000
    transactions in one (at most --warmup-max, 12), so the broker's JIT, the page cache,
    PostgreSQL's buffers and the services' connections are in the same steady state for
    every timed run;
 1. R rounds, each a ceiling run then an end-to-end run (alternating, so both see the same
    machine):
    ceiling: fd_load raw produces the same M messages (same producer settings as the
    end-to-end load) to a fresh 3-partition topic and consumes them back in the same process
    (no processing): messages/s from the first produce to the last message consumed;
    end to end: fd_load produce sends M messages to `transactions` as fast as the broker
    takes them; throughput = M / (first produce -> db_writer has stored all M rows, polled
    every 20 ms from its /metrics counter, checked with one count(*) at the end; --poll sql
    polls count(*) instead, which costs PostgreSQL CPU while it runs);
 2. latency at a sustainable rate: after --paced-warmup (300000) messages at the same rate,
    not timed (the broker's JIT meets the paths of small batches there), and a 5 s pause,
    --paced-rounds (3) times --paced-count (50000) messages paced at --rate (10000/s),
    percentiles of produce -> readable in `transactions` (fd_watch, a read_committed C
    consumer in a process of its own: the load generator's and the broker's part), of
    produce -> `scoring` (when fd_watch receives the score: the detector's transaction is
    committed)
    and of produce -> row
    (created_at, set by db_writer's insert transaction), and the CPU per 1000 transactions
    of each process over the paced run;
 3. detector alone: a fresh consumer group replays everything in `transactions` into a
    scratch topic with db_writer and the load generator stopped; with --reasons-ab instead
    --ab-rows (200000) generated rows, none repeated, are replayed --rounds times each with
    REASONS=off and with the detector's REASONS (default flagged), alternating, each replay
    with a fresh changelog (the same scores and flags every time), and the throughput and
    CPU ratios are printed.
The detector runs with REASONS=off unless --detector-env sets REASONS: the load cycles
--rows rows, which repeats every customer's history, and the model then flags about a
third of the rows, whose TreeSHAP would dominate every figure (--reasons-ab measures the
reasons on data as it comes).
For every timed phase it prints the CPU time of each process (utime + stime from
/proc/<pid>/stat of the process and its live descendants, each with its ended children's
cutime + cstime, bench/proc_cpu.py: PostgreSQL's autovacuum workers and the like are
counted once they end), from fd_load's "ready" (messages
formatted) to the end of the phase; fd_load its own getrusage over its timed part) as
CPU milliseconds per 1000 transactions, their total, and apart the part of kafka's that its
JIT compiler threads spent (counted in kafka's and the total); the ratio of each round and
the median ratio. Not a test: nothing is asserted.
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
sys.path.insert(0, os.path.join(ROOT, "bench"))
import streamlib as sl  # noqa: E402
from proc_cpu import TICK, proc_table, tree_cpu  # noqa: E402

# Below the kernel's ephemeral range (32768+), so no outgoing connection can hold them.
# BENCH_PORT_BASE (default 26000) moves them all, so two benchmarks can run side by side.
_BASE = int(os.environ.get("BENCH_PORT_BASE", "26000"))
PORTS = dict(KAFKA_PORT=str(_BASE + 92), KAFKA_CONTROLLER_PORT=str(_BASE + 93),
             PG_PORT=str(_BASE + 432), DETECTOR_METRICS_PORT=str(_BASE + 1),
             WRITER_METRICS_PORT=str(_BASE + 2), UI_PORT=str(_BASE + 501))
PROCS = ("fd_load", "kafka", "fraud_detector", "db_writer", "postgres")
JIT = "kafka JIT"  # the broker's JIT compiler threads: part of "kafka", shown apart


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


def latencies(conn, times_path, prefix):
    """Seconds from each message's produce call to its row's created_at, sorted."""
    sent = {}
    with open(times_path) as f:
        for line in f:
            i, us = line.split()
            sent[f"{prefix}{i}"] = int(us) / 1e6
    lat = []
    for tid, created in conn.execute(
            "SELECT transaction_id, extract(epoch FROM created_at)::float8 "
            "FROM transactions WHERE transaction_id LIKE %s", (prefix + "%",)):
        lat.append(created - sent[tid])
    lat.sort()
    return lat


class Watch:
    """fd_watch (a C process of its own, read_committed, assigned the ends of `transactions`
    and `scoring`): the wall clock at which each paced message became readable in
    `transactions` and its score in `scoring` (the detector's transaction committed).
    start() returns once its end offsets are resolved; finish() waits for it (it ends when
    both topics have given every id, or on SIGTERM) and returns ({index: t}, {index: t})."""

    def __init__(self, binary, bootstrap, prefix, count, out):
        self.out = out
        self.p = subprocess.Popen([binary, "--bootstrap", bootstrap, "--prefix", prefix,
                                   "--count", str(count), "--out", out],
                                  stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"fd_watch: expected 'ready', got {line!r}")

    def finish(self, timeout=30):
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.terminate()
            self.p.wait(10)
        self.p.stdout.read()
        if self.p.returncode != 0:
            raise RuntimeError(f"fd_watch exited with {self.p.returncode}")
        seen = {"t": {}, "s": {}}
        with open(self.out) as f:
            for line in f:
                which, i, us = line.split()
                seen[which][int(i)] = int(us) / 1e6
        return seen["t"], seen["s"]


def watch_latencies(seen, times_path):
    """Seconds from each message's produce call to its receipt, sorted."""
    lat = []
    with open(times_path) as f:
        for line in f:
            i, us = line.split()
            t = seen.get(int(i))
            if t is not None:
                lat.append(t - int(us) / 1e6)
    lat.sort()
    return lat


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def show_latency(label, lat):
    if not lat:
        print(f"{label}: no measurements")
        return
    print(f"{label} (ms): " + ", ".join(
        f"p{p} {pct(lat, p) * 1e3:.1f}" for p in (50, 90, 95, 99)) +
        f", max {lat[-1] * 1e3:.0f}")


def jit_cpu(pid):
    """CPU seconds of the JVM's JIT compiler threads ("C1 CompilerThread0", "C2 ...") in
    process pid: the part of the broker's CPU that is compiling its own code; None if the
    process cannot be read. A compiler thread that ends between two snapshots takes its CPU
    with it (HotSpot stops idle extra compiler threads where it runs several; on 2 CPUs it
    runs one C1 and one C2 thread and keeps them)."""
    total = 0.0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except (OSError, TypeError):
        return None
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                s = f.read()
        except OSError:
            continue
        if s[s.index("(") + 1:s.rindex(")")].startswith(("C1 Compiler", "C2 Compiler")):
            rest = s[s.rindex(")") + 2:].split()
            total += (int(rest[11]) + int(rest[12])) / TICK
    return total


class Cpu:
    """CPU seconds per process tree over a phase."""

    def __init__(self, roots, jvm=None):
        self.roots = roots  # name -> callable returning the root pid (or None)
        self.jvm = jvm  # callable returning the broker's pid: its JIT threads as JIT

    def snap(self):
        t = proc_table()
        out = {name: tree_cpu(t, f()) for name, f in self.roots.items()}
        jit = jit_cpu(self.jvm()) if self.jvm is not None else None
        if jit is not None:
            out[JIT] = jit
        return out

    @staticmethod
    def delta(a, b):
        return {k: max(0.0, b[k] - a[k]) for k in a if k in b}


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None


def wait_ready(p):
    """Waits for fd_load's "ready" line (its messages formatted, the clock about to start)."""
    line = p.stdout.readline()
    if line.strip() != "ready":
        raise RuntimeError(f"fd_load: expected 'ready', got {line!r}")


def run_load(cmd, on_ready):
    """Runs fd_load, calling on_ready() when it is about to start the clock; returns (its
    key=value output as a dict, its CPU seconds over the timed part)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    wait_ready(p)
    on_ready()
    out = p.stdout.read()
    _, status, _ = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"fd_load exited with {p.returncode}: {' '.join(cmd)}")
    kv = dict(kv.split("=") for kv in out.split())
    return kv, int(kv["cpu_us"]) / 1e6


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def speed_probe():
    """CPU ms of a fixed loop in this process, best of 5. On a VM the same work can take
    1.6x longer from one minute to the next while the guest looks idle (the host's other
    tenants; no steal time is reported here): the probe says how fast this machine was when
    a round began, so figures of different runs can be compared with that in mind."""
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        x = 0
        for i in range(200000):
            x += i * i
        best = min(best, time.process_time() - t0)
    return best * 1e3


def cpu_head():
    return f"  {'phase':<24}" + "".join(f"{k:>16}" for k in PROCS) + f"{'total':>10}" + \
        f"{'(kafka JIT)':>13}"


def cpu_line(label, cpu, n):
    """One row of a CPU table: each process, the total of all, and the part of kafka's that
    its JIT compiler threads spent (included in kafka's and the total)."""
    return f"  {label:<24}" + "".join(f"{cpu.get(k, 0) * 1e6 / n:>16.1f}" for k in PROCS) + \
        f"{sum(cpu.get(k, 0) for k in PROCS) * 1e6 / n:>10.1f}" + \
        (f"{cpu[JIT] * 1e6 / n:>13.1f}" if JIT in cpu else f"{'unknown':>13}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=200000)
    ap.add_argument("--rounds", type=int, default=2, help="ceiling + end-to-end pairs")
    ap.add_argument("--rows", type=int, default=50000, help="distinct generated rows (cycled)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--model-dir", default=os.path.join(ROOT, "models/default"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--rate", type=float, default=10000, help="paced latency run: msg/s")
    ap.add_argument("--paced-count", type=int, default=50000,
                    help="paced latency run: messages (0 = skip)")
    ap.add_argument("--paced-warmup", type=int, default=300000,
                    help="paced run: messages sent at --rate first, not timed (0 = none)")
    ap.add_argument("--paced-rounds", type=int, default=3,
                    help="paced run: timed runs of --paced-count after the one warm-up")
    ap.add_argument("--no-alone", action="store_true", help="skip the detector-alone replay")
    ap.add_argument("--warmup-max", type=int, default=12, choices=range(1, 1000),
                    metavar="N",
                    help="most end-to-end warm-up passes of --count (at least one)")
    ap.add_argument("--jit-settled", type=float, default=0.5,
                    help="warm-up ends after a pass in which the broker's JIT compiler threads "
                         "used at most this many CPU ms per 1000 transactions")
    ap.add_argument("--no-e2e", action="store_true",
                    help="skip the ceiling and end-to-end rounds (warm-up included)")
    ap.add_argument("--reasons-ab", action="store_true",
                    help="detector alone: --rounds replays each with REASONS=off and with the "
                         "detector's REASONS (default flagged), alternating, over --ab-rows "
                         "generated rows of their own; prints the ratios")
    ap.add_argument("--ab-rows", type=int, default=200000,
                    help="rows of the --reasons-ab replays")
    ap.add_argument("--state-ab", action="store_true",
                    help="each round also runs end to end with the detector's customer state "
                         "off (STATE=false) and prints the ratio with state / without")
    ap.add_argument("--upload-headers", action="store_true",
                    help="every message fd_load sends carries the interface's upload_id and "
                         "upload_row headers (the detector copies them onto the score, "
                         "db_writer stores them, PostgreSQL indexes them)")
    ap.add_argument("--poll", choices=("metric", "sql"), default="metric",
                    help="how the end of an end-to-end run is detected")
    ap.add_argument("--detector-env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for fraud_detector (e.g. KAFKA_LINGER_MS=1, "
                    "BATCH_SIZE=2000, LOG_LEVEL=debug); repeatable")
    ap.add_argument("--writer-env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for db_writer; repeatable")
    ap.add_argument("--load-opt", action="append", default=[], metavar="name=value",
                    help="librdkafka property of fd_load's producer (ceiling and end-to-end "
                    "load alike), e.g. linger.ms=20; repeatable")
    a = ap.parse_args()
    if a.paced_rounds < 1:
        ap.error("--paced-rounds must be at least 1 (--paced-count 0 skips the paced run)")
    denv = dict(kv.split("=", 1) for kv in a.detector_env)
    # The load cycles --rows rows, so every pass repeats each customer's history and the
    # model flags about a third of the rows; with reasons on (the service's default:
    # flagged) their TreeSHAP would dominate every figure. So reasons are off here unless
    # asked for; --reasons-ab measures their cost on data as it comes.
    reasons_given = "REASONS" in denv
    denv.setdefault("REASONS", "off")
    wenv = dict(kv.split("=", 1) for kv in a.writer_env)
    build = os.path.abspath(a.build)
    fd_load = os.path.join(build, "bench/pipeline/fd_load")
    xopts = [x for o in a.load_opt for x in ("-X", o)] + \
        (["--upload-headers"] if a.upload_headers else [])
    stack = os.path.join(ROOT, "scripts/stack")
    work = tempfile.mkdtemp(prefix="fs-bench-pipeline.")
    os.chmod(work, 0o755)  # PostgreSQL runs as user postgres when we are root
    stack_dir = os.path.join(work, "stack")
    env_vars = dict(os.environ, STACK_DIR=stack_dir, STACK_SERVICES="",
                    STACK_SKIP_SETUP="1", STACK_BUILD_DIR=build, **PORTS)
    os.environ.update({k: v for k, v in env_vars.items() if k.startswith("STACK_")})
    os.environ.update(PORTS)
    bootstrap = f"127.0.0.1:{PORTS['KAFKA_PORT']}"
    env = sl.Env(ROOT, build, bootstrap, PORTS["PG_PORT"], a.model_dir,
                 os.path.join(work, "logs"))
    os.makedirs(env.logs, exist_ok=True)
    services = []
    n = a.count
    try:
        print(f"bench/pipeline: M={n} transactions, {a.rounds} rounds, work dir {work}, "
              f"build {build}"
              + f", detector REASONS={denv['REASONS']}"
              + (f", detector env {' '.join(a.detector_env)}" if a.detector_env else "")
              + (f", writer env {' '.join(a.writer_env)}" if a.writer_env else "")
              + (f", load {' '.join(a.load_opt)}" if a.load_opt else "")
              + (", with the interface's upload headers" if a.upload_headers else "")
              + f", poll {a.poll}, load average {loadavg():.2f}, speed probe "
              f"{speed_probe():.1f} ms (CPU ms of a fixed loop; lower is faster)", flush=True)
        print(f"CPU: {cpu_model()}, {os.cpu_count()} CPUs", flush=True)
        up = subprocess.run([stack, "up"], env=env_vars,
                            stdout=open(os.path.join(work, "stack-up.log"), "w"),
                            stderr=subprocess.STDOUT)
        if up.returncode != 0:
            print(open(os.path.join(work, "stack-up.log")).read()[-2000:], file=sys.stderr)
            print("bench/pipeline: scripts/stack up failed", file=sys.stderr)
            return 1
        raw_topics = ["bench.raw.w"] + [f"bench.raw.{r}" for r in range(a.rounds)]
        subprocess.run([os.path.join(ROOT, ".venv/bin/python"),
                        os.path.join(ROOT, "tools/kafka/topics.py"), "--bootstrap", bootstrap,
                        "ensure", *(f"{t}:3" for t in raw_topics), "bench.scoring:3"],
                       check=True, stdout=subprocess.DEVNULL)
        csv_path = sl.generate(env, a.rows, 21, os.path.join(work, "bench.csv"))

        w = sl.writer(env, int(PORTS["WRITER_METRICS_PORT"]), **wenv)
        services.append(w)
        w.start(wait_ready=False)
        def start_detector(extra):
            det = sl.detector(env, int(PORTS["DETECTOR_METRICS_PORT"]), "bench", **extra)
            services.append(det)
            det.start()
            return det

        d = start_detector(denv)
        pg_pid = lambda: read_pid(os.path.join(stack_dir, "pg/data/postmaster.pid"))  # noqa: E731
        kafka_pid = lambda: read_pid(os.path.join(stack_dir, "pids/kafka.pid"))  # noqa: E731
        cpu = Cpu({"kafka": kafka_pid,
                   "fraud_detector": lambda: d.proc.pid if d.proc else None,
                   "db_writer": lambda: w.proc.pid if w.proc else None,
                   "postgres": pg_pid}, jvm=kafka_pid)
        conn = sl.db_connect(env)

        def ceiling(topic, label):
            la = loadavg()
            c0 = {}
            out, load_cpu = run_load([fd_load, "raw", "--bootstrap", bootstrap, "--topic", topic,
                                      "--input", csv_path, "--count", str(n), "--prefix",
                                      f"{label}-", *xopts], lambda: c0.update(cpu.snap()))
            c = Cpu.delta(c0, cpu.snap())
            c["fd_load"] = load_cpu
            return float(out["rate"]), float(out["seconds"]), c, la

        def end_to_end(prefix):
            la, probe = loadavg(), speed_probe()
            written0 = w.metric("db_writer_rows_written_total") or 0
            rows0 = conn.execute("SELECT count(*) FROM transactions").fetchone()[0]
            in0 = d.metric("fraud_detector_messages_in_total") or 0
            times_path = os.path.join(work, f"times-{prefix}txt")
            load = subprocess.Popen([fd_load, "produce", "--bootstrap", bootstrap, "--topic",
                                     "transactions", "--input", csv_path, "--count", str(n),
                                     "--prefix", prefix, "--times", times_path, *xopts],
                                    stdout=subprocess.PIPE, text=True)
            wait_ready(load)
            c0 = cpu.snap()
            done_at = detector_done_at = None
            deadline = time.time() + 600
            polls = 0
            while time.time() < deadline:
                if a.poll == "sql":
                    done = conn.execute("SELECT count(*) FROM transactions").fetchone()[0] \
                        >= rows0 + n
                else:
                    done = (w.metric("db_writer_rows_written_total") or 0) >= written0 + n
                if done:
                    done_at = time.time()
                    break
                polls += 1
                if detector_done_at is None and polls % 5 == 0:
                    if (d.metric("fraud_detector_messages_in_total") or 0) >= in0 + n:
                        detector_done_at = time.time()
                time.sleep(0.02)
            c1 = cpu.snap()
            out = load.stdout.read()
            _, status, _ = os.wait4(load.pid, 0)
            load.returncode = os.waitstatus_to_exitcode(status)
            got = conn.execute("SELECT count(*) FROM transactions WHERE transaction_id LIKE %s",
                               (prefix + "%",)).fetchone()[0]
            if load.returncode != 0 or done_at is None or got != n:
                raise RuntimeError(f"end to end {prefix}: load exit {load.returncode}, "
                                   f"{got} rows of {n}")
            c = Cpu.delta(c0, c1)
            prod = dict(kv.split("=") for kv in out.split())
            c["fd_load"] = int(prod["cpu_us"]) / 1e6
            first = int(prod["first_us"]) / 1e6
            secs = done_at - first
            det = detector_done_at - first if detector_done_at else None
            lat = latencies(conn, times_path, prefix)
            return dict(rate=n / secs, secs=secs, det=det, prod=float(prod["rate"]), cpu=c,
                        lat=lat, la=la, probe=probe)

        if not a.no_e2e:
            # 0. warm-up, not timed: one ceiling pass, then end-to-end passes until the
            # broker's JIT compiler has settled. A fresh broker's C2 compiler kept compiling
            # for millions of messages (on 2 CPUs, in 600,000-message loads of a hand-started
            # stack: 5.3, 1.6, 3.2, 3.0, 1.3, 1.0 ms of CPU per 1000 transactions in its
            # compiler threads, 43 % of the broker's CPU in the first load): a start-up cost,
            # not the steady state the rounds measure. What is left is still counted, in the
            # table's "(kafka JIT)" column.
            r, s, _, _ = ceiling("bench.raw.w", "warm-raw")
            jits, settled = [], f"not settled after --warmup-max {a.warmup_max}"
            for total_warm in range(1, a.warmup_max + 1):
                e = end_to_end(f"warm{total_warm}-")
                if JIT not in e["cpu"]:
                    settled = "unknown: the broker's threads could not be read"
                    break
                jits.append(e["cpu"][JIT] * 1e6 / n)
                if jits[-1] <= a.jit_settled:
                    settled = "settled"
                    break
            print(f"warm-up (not counted): ceiling {r:,.0f} msg/s, end to end {e['rate']:,.0f} "
                  f"tx/s; {total_warm} end-to-end pass(es) until the broker's JIT compiler "
                  f"used <= {a.jit_settled} ms per 1000 ({settled}): "
                  + ", ".join(f"{x:.2f}" for x in jits), flush=True)

            # 1. alternating rounds.
            ceil, e2e, state_ab = [], [], []
            for k in range(a.rounds):
                r, s, c, la = ceiling(f"bench.raw.{k}", f"raw{k}")
                ceil.append(dict(rate=r, secs=s, cpu=c, la=la))
                print(f"round {k + 1}: ceiling (broker produce+consume, same messages) {r:,.0f} msg/s "
                      f"({s:.2f} s, load average {la:.2f})", flush=True)
                e = end_to_end(f"bench{k}-")
                e2e.append(e)
                det = (f"; detector had committed all after {e['det']:.2f} s "
                       f"({n / e['det']:,.0f}/s)" if e["det"] else "")
                print(f"round {k + 1}: end to end (first produce -> all {n} rows stored) "
                      f"{e['rate']:,.0f} tx/s ({e['secs']:.2f} s{det}); producer alone "
                      f"{e['prod']:,.0f} msg/s; ratio {e['rate'] / r:.2f} (load average "
                      f"{e['la']:.2f}, speed probe {e['probe']:.1f} ms)", flush=True)
                show_latency(f"round {k + 1}: latency produce -> row at full speed (queueing)",
                             e["lat"])
                if a.state_ab:
                    # The same load with the customer state off, then back on for the next round.
                    d.stop()
                    d = start_detector(dict(denv, STATE="false"))
                    off = end_to_end(f"nostate{k}-")
                    d.stop()
                    d = start_detector(denv)
                    state_ab.append((e["rate"], off["rate"]))
                    print(f"round {k + 1}: end to end with customer state {e['rate']:,.0f} tx/s, "
                          f"without (STATE=false) {off['rate']:,.0f} tx/s: ratio "
                          f"{e['rate'] / off['rate']:.2f} (target >= 0.8); CPU ms per 1000 tx "
                          f"detector {1e6 * e['cpu'].get('fraud_detector', 0) / n:.1f} vs "
                          f"{1e6 * off['cpu'].get('fraud_detector', 0) / n:.1f}", flush=True)

            if state_ab:
                rs = [on / off for on, off in state_ab]
                print(f"customer state: end to end with / without, per round "
                      + ", ".join(f"{x:.2f}" for x in rs) + f"; median {statistics.median(rs):.2f}")
            best_ceiling = max(c["rate"] for c in ceil)
            med_e2e = statistics.median(e["rate"] for e in e2e)
            ratios = [e["rate"] / c["rate"] for c, e in zip(ceil, e2e)]
            print(f"ceiling: best {best_ceiling:,.0f} msg/s of "
                  + ", ".join(f"{c['rate']:,.0f}" for c in ceil))
            print(f"end to end: median {med_e2e:,.0f} tx/s of "
                  + ", ".join(f"{e['rate']:,.0f}" for e in e2e))
            print(f"ratio per round: {', '.join(f'{x:.2f}' for x in ratios)}; median "
                  f"{statistics.median(ratios):.2f}; median end to end / best ceiling "
                  f"{med_e2e / best_ceiling:.2f} (target >= 0.5 and >= 50,000/s: "
                  f"{'met' if med_e2e >= 50000 and med_e2e >= best_ceiling / 2 else 'not met'})")
            print("CPU ms per 1000 transactions (utime+stime of each process tree, ended "
                  "children's included; "
                  "ceiling: fd_load is producer + consumer):")
            print(cpu_head())
            for k in range(a.rounds):
                print(cpu_line(f"round {k + 1} ceiling", ceil[k]["cpu"], n))
                print(cpu_line(f"round {k + 1} end to end", e2e[k]["cpu"], n))
            for name in ("fraud_detector_transactions_committed_total",
                         "fraud_detector_transactions_aborted_total"):
                print(f"{name} {d.metric(name)}")

        # 2. latency at a sustainable rate: --paced-count messages at --rate per second.
        # (--state-ab's rounds sent as many again, with the state off)
        total_in = (0 if a.no_e2e else a.rounds * (2 if a.state_ab else 1) + total_warm) * n
        if a.paced_count > 0:
            # The probe reads through the warm-up too, so its fetch paths are warm as well.
            watch = Watch(os.path.join(build, "bench/pipeline/fd_watch"), bootstrap, "paced-",
                          a.paced_count, os.path.join(work, "watch-paced.txt"))
            if a.paced_warmup > 0:
                # Not timed: the broker's JIT compiles the paths of small paced batches and
                # frequent transactions only when it first sees them; its C2 compiler took
                # most of a core for 20-30 s of paced traffic on a fresh broker (2 CPUs),
                # which is a start-up cost, not the steady state this run measures.
                subprocess.run([fd_load, "produce", "--bootstrap", bootstrap, "--topic",
                                "transactions", "--input", csv_path, "--count",
                                str(a.paced_warmup), "--prefix", "pwarm-", "--rate",
                                str(a.rate), *xopts], check=True, stdout=subprocess.DEVNULL)
                sl.wait_rows(env, "pwarm-", a.paced_warmup, 300)
                time.sleep(5)  # the compiles the warm-up queued run while nothing else does
                total_in += a.paced_warmup
                print(f"paced warm-up (not counted): {a.paced_warmup} messages at "
                      f"{a.rate:,.0f}/s", flush=True)
            s99s, r99s = [], []
            for rnd in range(a.paced_rounds):
                pre = "paced-" if rnd == 0 else f"paced{rnd}-"
                if rnd > 0:
                    watch = Watch(os.path.join(build, "bench/pipeline/fd_watch"), bootstrap,
                                  pre, a.paced_count, os.path.join(work, f"watch-{pre}txt"))
                ppath = os.path.join(work, f"times-{pre}txt")
                probe = speed_probe()
                c0 = {}
                _, load_cpu = run_load([fd_load, "produce", "--bootstrap", bootstrap, "--topic",
                                        "transactions", "--input", csv_path, "--count",
                                        str(a.paced_count), "--prefix", pre, "--times", ppath,
                                        "--rate", str(a.rate), *xopts],
                                       lambda: c0.update(cpu.snap()))
                got = sl.wait_rows(env, pre, a.paced_count, 300)
                c = Cpu.delta(c0, cpu.snap())
                c["fd_load"] = load_cpu
                arrived, scored = watch.finish()
                if got is None or got < a.paced_count:
                    print(f"bench/pipeline: paced run: {got} of {a.paced_count} rows",
                          file=sys.stderr)
                    return 1
                tag = f"paced round {rnd + 1}: " if a.paced_rounds > 1 else ""
                print(f"{tag}speed probe before the round {probe:.1f} ms", flush=True)
                alat = watch_latencies(arrived, ppath)
                show_latency(f"{tag}latency produce -> readable in transactions at "
                             f"{a.rate:,.0f}/s ({len(alat)} of {a.paced_count})", alat)
                slat = watch_latencies(scored, ppath)
                show_latency(f"{tag}latency produce -> scoring (read_committed) at "
                             f"{a.rate:,.0f}/s ({len(slat)} of {a.paced_count} transactions)",
                             slat)
                rlat = latencies(conn, ppath, pre)
                show_latency(f"{tag}latency produce -> row at {a.rate:,.0f}/s "
                             f"({a.paced_count} transactions)", rlat)
                s99s.append(pct(slat, 99) * 1e3)
                r99s.append(pct(rlat, 99) * 1e3)
                print(f"{tag}CPU ms per 1000 transactions at {a.rate:,.0f}/s (from the first "
                      f"produce to the last row):")
                print(cpu_head())
                print(cpu_line("paced", c, a.paced_count), flush=True)
                total_in += a.paced_count
            s99, r99 = statistics.median(s99s), statistics.median(r99s)
            # The targets are set at 10,000/s; at another rate only the figures are printed.
            verdict = (lambda ok: "met" if ok else "not met") if a.rate == 10000 else \
                (lambda ok: f"not checked at {a.rate:,.0f}/s")
            print(f"targets at 10,000/s (median p99 of {a.paced_rounds} paced round(s)): "
                  f"produce -> scoring p99 <= 50 ms {verdict(s99 <= 50)} "
                  f"({', '.join(f'{x:.1f}' for x in s99s)}); produce -> row p99 <= 150 ms "
                  f"{verdict(r99 <= 150)} ({', '.join(f'{x:.1f}' for x in r99s)})")
            for name in ("fraud_detector_transactions_committed_total",
                         "fraud_detector_messages_in_total"):
                print(f"{name} {d.metric(name)}")
        conn.close()
        if a.no_alone:
            return 0

        # 3. the detector alone: a new group replays everything in `transactions` into a
        # scratch topic, with db_writer and the load generator idle.
        d.stop()
        w.stop()

        def replay(group, extra, count):
            rp = sl.detector(env, int(PORTS["DETECTOR_METRICS_PORT"]), "replay",
                             **dict(denv, GROUP_ID=group, SCORING_TOPIC="bench.scoring",
                                    **extra))
            services.append(rp)
            cpu.roots["fraud_detector"] = lambda: rp.proc.pid if rp.proc else None
            rp.start()
            c0 = cpu.snap()
            t0 = time.time()
            while (rp.metric("fraud_detector_messages_in_total") or 0) < count:
                if time.time() - t0 > 300:
                    raise RuntimeError("replay did not finish")
                time.sleep(0.05)
            secs = time.time() - t0
            c = Cpu.delta(c0, cpu.snap())
            rp.stop()
            return count / secs, secs, c

        if not a.reasons_ab:
            rate, secs, c = replay("bench-replay", {}, total_in)
            print(f"detector alone (backlog of {total_in}, from ready to all committed): "
                  f"{rate:,.0f} msg/s ({secs:.2f} s)")
            print(cpu_line("detector alone", c, total_in))
            return 0
        # The reasons A/B replays data as it comes (--ab-rows generated rows, none repeated:
        # the cycled rows above make a customer's history repeat, and the model then flags
        # a third of them), each replay with a changelog of its own, so every replay starts
        # from empty state and computes the same scores and flags.
        mode = denv["REASONS"] if reasons_given else "flagged"
        ab_csv = sl.generate(env, a.ab_rows, 22, os.path.join(work, "ab.csv"))
        flagged = sum(f for _, f in sl.expected_scores(env, ab_csv).values())
        topics = ["bench.ab.in:3"] + [f"bench.ab.state.{x}{k}:3:compact"
                                      for k in range(a.rounds) for x in ("off", "on")]
        subprocess.run([os.path.join(ROOT, ".venv/bin/python"),
                        os.path.join(ROOT, "tools/kafka/topics.py"), "--bootstrap", bootstrap,
                        "ensure", *topics], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([fd_load, "produce", "--bootstrap", bootstrap, "--topic", "bench.ab.in",
                        "--input", ab_csv, "--count", str(a.ab_rows), "--prefix", "ab-",
                        *xopts], check=True, stdout=subprocess.DEVNULL)
        print(f"reasons A/B: {a.ab_rows} generated rows, {flagged} flagged by `fraudctl score` "
              f"({100.0 * flagged / a.ab_rows:.2f} %)", flush=True)
        ab = []
        for k in range(a.rounds):
            for label, extra in (("off", {"REASONS": "off"}), ("on", {"REASONS": mode})):
                rate, secs, c = replay(f"bench-ab-{label}-{k}",
                                       dict(extra, TRANSACTIONS_TOPIC="bench.ab.in",
                                            STATE_TOPIC=f"bench.ab.state.{label}{k}"),
                                       a.ab_rows)
                cpu_ms = c.get("fraud_detector", 0) * 1e6 / a.ab_rows
                ab.append((rate, cpu_ms))
                print(f"detector alone, REASONS={'off' if label == 'off' else mode}, round "
                      f"{k + 1}: {rate:,.0f} msg/s ({secs:.2f} s), detector CPU {cpu_ms:.2f} ms "
                      f"per 1000", flush=True)
        rr = [on[0] / off[0] for off, on in zip(ab[0::2], ab[1::2])]
        cr = [on[1] / off[1] for off, on in zip(ab[0::2], ab[1::2])]
        print(f"reasons ({mode}) vs off, detector alone: throughput ratio per round "
              + ", ".join(f"{x:.3f}" for x in rr) + f" (median {statistics.median(rr):.3f}); "
              "CPU per message ratio " + ", ".join(f"{x:.3f}" for x in cr)
              + f" (median {statistics.median(cr):.3f})")
        return 0
    finally:
        for s in services:
            s.stop()
        subprocess.run([stack, "down"], env=env_vars, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        if a.keep:
            print(f"bench/pipeline: work directory kept: {work}")
        else:
            subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    sys.exit(main())
