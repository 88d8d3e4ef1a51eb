"""CPU time of process trees, from /proc, for the benchmarks' per-process figures.

A tree's CPU is that of its root and every live descendant, each with the CPU of its
children that have ended and been waited for (cutime + cstime): PostgreSQL's autovacuum
workers and backends come and go, and what they spent then shows in the postmaster's. The
difference of two snapshots is the CPU the tree spent between them, whether a process
ended in between or not.
"""
import os

TICK = os.sysconf("SC_CLK_TCK")


def proc_table():
    """pid -> (ppid, CPU seconds: utime + stime + cutime + cstime) of every process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rindex(")") + 2:].split()
        out[int(name)] = (int(rest[1]), sum(int(x) for x in rest[11:15]) / TICK)
    return out


def tree_cpu(table, root):
    """CPU seconds of root and all its live descendants (with their waited-for children)."""
    if root is None or root not in table:
        return 0.0
    kids = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        p = todo.pop()
        total += table[p][1]
        todo.extend(kids.get(p, []))
    return total
