"""Runs last (file order): down stops everything and removes STACK_DIR; down again is fine;
start-service/stop-service of a component work on their own."""
import os
import shutil
import socket
import subprocess

from conftest import ROOT, STACK, stack


def port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_stop_and_start_one_component(stack_env):
    pg = int(os.environ["PG_PORT"])
    stack("stop-service", "postgres")
    assert not port_open(pg)
    status = stack("status", check=False)
    assert status.returncode != 0 and "postgres        -" in status.stdout
    stack("start-service", "postgres")
    assert port_open(pg)
    assert stack("status").returncode == 0


def broker_cmdline():
    with open(os.path.join(os.environ["STACK_DIR"], "pids", "kafka.pid")) as f:
        pid = f.readline().strip()
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")


def test_broker_collector_shenandoah_else_serial(stack_env, tmp_path):
    """The single broker runs Shenandoah (scripts/setup installs Debian's OpenJDK, which has
    it); on a JVM that refuses the flag, start-service says so and starts it on SerialGC."""
    assert b"-XX:+UseShenandoahGC" in broker_cmdline()
    java = shutil.which("java")
    assert java, "no java on PATH"
    fake = tmp_path / "java"
    fake.write_text("#!/bin/sh\n"
                    "for a in \"$@\"; do\n"
                    "  if [ \"$a\" = -XX:+UseShenandoahGC ]; then\n"
                    "    echo \"Unrecognized VM option 'UseShenandoahGC'\" >&2; exit 1\n"
                    "  fi\n"
                    "done\n"
                    f"exec {java} \"$@\"\n")
    fake.chmod(0o755)
    stack("stop-service", "kafka")
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    env.pop("KAFKA_GC_OPTS", None)
    p = subprocess.run([STACK, "start-service", "kafka"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "no Shenandoah collector: SerialGC instead" in p.stderr
    line = broker_cmdline()
    assert b"-XX:+UseSerialGC" in line and b"-XX:+UseShenandoahGC" not in line
    stack("stop-service", "kafka")
    stack("start-service", "kafka")
    assert b"-XX:+UseShenandoahGC" in broker_cmdline()


def test_down_is_complete_and_idempotent(stack_env):
    kafka = int(os.environ["KAFKA_PORT"])
    pg = int(os.environ["PG_PORT"])
    stack("down")
    assert not os.path.exists(os.environ["STACK_DIR"])
    assert not port_open(kafka) and not port_open(pg)
    stack("down")
    status = stack("status", check=False)
    assert status.returncode != 0
    assert "kafka           -" in status.stdout
