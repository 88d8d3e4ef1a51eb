#!/usr/bin/env python3
"""Deployment checks that need no Docker engine (none runs on the build machine).

Each check compares a deployment file with the thing it must agree with, computed
independently from the repository: the Compose specification's JSON schema, the binaries'
own --help, the apt packages that own the libraries the binaries load, scripts/setup,
tools/kafka/pom.xml, scripts/stack, the services' metric names, README.md. Run through
tests/deploy/run; the last line is "N passed, N failed".
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# The release tree scripts/build makes; DEPLOY_BUILD_DIR picks another (relative to ROOT).
BUILD = ROOT / os.environ.get("DEPLOY_BUILD_DIR", "build")
SCHEMA = ROOT.parent / "shared" / "schemas" / "compose-spec.json"
APP_SERVICES = ("fraud_detector", "db_writer", "interface")
# The port each app service serves /healthz, /readyz and /metrics on, by env name.
HTTP_PORT_ENV = {"fraud_detector": "METRICS_PORT", "db_writer": "METRICS_PORT",
                 "interface": "LISTEN_PORT"}
# Environment variables libpq reads itself (the contract: "PG* env vars also honoured").
LIBPQ_ENV = {"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD",
             "PGPASSFILE", "PGSSLMODE", "PGCONNECT_TIMEOUT", "PGAPPNAME", "PGOPTIONS"}
# Libraries every debian:bookworm-slim image already has (Essential/base packages).
BASE_PACKAGES = {"libc6", "libgcc-s1", "libuuid1", "zlib1g", "libzstd1", "liblzma5"}
FLOATING_TAGS = {"", "latest", "main", "master", "edge", "nightly", "dev"}


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise Fail(msg)


# ---------------------------------------------------------------------------------------
# Helpers: compose interpolation, Dockerfile and .dockerignore parsing, shell and git.

INTERP = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}"
                    r"|([A-Za-z_][A-Za-z0-9_]*))")


def interp_vars(text):
    """Every variable name a compose file interpolates, with its default (or None)."""
    out = {}
    for m in INTERP.finditer(text):
        if m.group(1):
            continue
        name = m.group(2) or m.group(5)
        default = m.group(4) if m.group(3) in (":-", "-") else None
        out.setdefault(name, set()).add(default)
    return out


def interpolate(obj, env):
    """Compose-style interpolation of every string in obj ($$ is a literal $)."""
    if isinstance(obj, dict):
        return {k: interpolate(v, env) for k, v in obj.items()}
    if isinstance(obj, list):
        return [interpolate(v, env) for v in obj]
    if not isinstance(obj, str):
        return obj

    def sub(m):
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, arg = m.group(3), m.group(4)
        val = env.get(name)
        if op == ":-":
            return val if val else arg
        if op == "-":
            return val if val is not None else arg
        if op in (":?", "?"):
            if val is None or (op == ":?" and not val):
                raise Fail(f"compose.yaml: ${{{name}}} is required: {arg}")
            return val
        if op in (":+", "+"):
            return arg if val else ""
        return val or ""
    return INTERP.sub(sub, obj)


def read_env_file(path):
    env = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", s)
        if not m:
            raise Fail(f"{path.name}:{n}: not NAME=value: {line!r}")
        env[m.group(1)] = m.group(2)
    return env


def parse_dockerfile(path):
    """[(stage_name, base_image, [(instruction, args_text)])], ARG defaults resolved."""
    lines, buf = [], ""
    for raw in path.read_text().splitlines():
        s = raw.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        lines.append(buf + s)
        buf = ""
    args, stages = {}, []
    for line in lines:
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        rest = rest.strip()
        if instr == "ARG" and not stages:
            k, _, v = rest.partition("=")
            args[k] = v
            continue
        if instr == "FROM":
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), rest.split()[0])
            m = re.search(r"\bAS\s+(\S+)", rest, re.I)
            stages.append((m.group(1) if m else str(len(stages)), image, []))
            continue
        need(stages, f"{path}: {instr} before FROM")
        stages[-1][2].append((instr, rest))
    return stages


def dockerignore_patterns():
    pats = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            pats.append(s)
    return pats


def _pattern_re(pat):
    # Docker's rules: filepath.Match per path, "**" matches any number of directories.
    out, i = "", 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pat.startswith("**", i):
            out += ".*"
            i += 2
        elif pat[i] == "*":
            out += "[^/]*"
            i += 1
        elif pat[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pat[i])
            i += 1
    return re.compile(out + "(?:/.*)?$")  # a matched directory excludes its contents


def docker_ignored(relpath, pats):
    ignored = False
    for p in pats:
        neg = p.startswith("!")
        p = p[1:] if neg else p
        p = os.path.normpath(p.lstrip("/"))
        if _pattern_re(p).match(relpath):
            ignored = not neg
    return ignored


def free_ports(n):
    import socket
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


def git_files():
    r = run(["git", "-C", str(ROOT), "ls-files"])
    if r.returncode != 0:
        raise Skip("not a git checkout: " + r.stderr.strip())
    return r.stdout.split()


def dpkg_owner(path):
    r = run(["dpkg", "-S", str(path)])
    if r.returncode != 0:
        # /lib is a symlink to /usr/lib on bookworm; dpkg knows one of the two spellings.
        alt = str(path)
        alt = alt[4:] if alt.startswith("/usr/") else "/usr" + alt
        r = run(["dpkg", "-S", alt])
    if r.returncode != 0:
        return None
    return r.stdout.split(":")[0].strip()


def bash_array(text, name):
    m = re.search(rf"^{name}=\((.*?)^\)", text, re.S | re.M)
    if not m:
        return None
    body = "\n".join(l.split("#", 1)[0] for l in m.group(1).splitlines())
    return body.split()


def cmake_executables():
    """{executable name: its directory relative to ROOT} from add_executable()."""
    out = {}
    for cm in (ROOT / "src").glob("*/CMakeLists.txt"):
        for m in re.finditer(r"add_executable\(\s*([A-Za-z0-9_]+)", cm.read_text()):
            out[m.group(1)] = cm.parent.relative_to(ROOT).as_posix()
    return out


def help_options(binary):
    """ENV -> default from `binary --help` ("  ENV  --flag  (default: X)  help")."""
    r = run([str(binary), "--help"])
    if r.returncode != 0:
        raise Fail(f"{binary.relative_to(ROOT)} --help exited {r.returncode}: {r.stderr.strip()}")
    opts = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^  ([A-Z][A-Z0-9_]*)  (--\S+)  \(default: (.*?)\)", line)
        if m:
            opts[m.group(1)] = m.group(3)
    need(opts, f"{binary.relative_to(ROOT)} --help lists no options in the svc_config format")
    return opts, r.stdout


def published_ports(svc):
    """[(host_ip, host_port, container_port)] of one interpolated service."""
    out = []
    for p in svc.get("ports", []) or []:
        if isinstance(p, dict):
            out.append((str(p.get("host_ip", "")), str(p.get("published", "")),
                        str(p.get("target"))))
            continue
        parts = str(p).split(":")
        if len(parts) == 3:
            out.append((parts[0], parts[1], parts[2].split("/")[0]))
        elif len(parts) == 2:
            out.append(("", parts[0], parts[1].split("/")[0]))
        else:
            out.append(("", "", parts[0].split("/")[0]))
    return out


def env_dict(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def parse_topics(text):
    """kafka-setup's / scripts/stack's topic list, name:partitions[:cleanup policy] each, as
    {name: partitions} or {name: (partitions, policy)} when a policy is given."""
    topics = {}
    for spec in text.split():
        n, _, rest = spec.partition(":")
        p, _, policy = rest.partition(":")
        topics[n] = (int(p or "1"), policy) if policy else int(p or "1")
    return topics


def healthcheck_url(svc):
    test = (svc.get("healthcheck") or {}).get("test")
    if isinstance(test, list):
        test = " ".join(test)
    m = re.search(r"https?://([^/:\s]+):(\d+)(/\S*)", test or "")
    return (m.group(1), m.group(2), m.group(3)) if m else None


def source_metric_names():
    """String literals in src/ that look like Prometheus metric names."""
    names = set()
    for f in (ROOT / "src").rglob("*.c"):
        for m in re.finditer(r'"([a-z][a-z0-9_]*_[a-z0-9_]+)"', f.read_text(errors="replace")):
            names.add(m.group(1))
    return names


PROMQL_WORDS = {"up", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "and", "or", "unless", "offset", "inf", "nan", "le"}


def promql_metrics(expr):
    e = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)   # strings
    e = re.sub(r"\{[^}]*\}", "", e)               # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)              # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    out = set()
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", e):
        w = m.group(1)
        if w.lower() in PROMQL_WORDS or re.fullmatch(r"\d.*", w):
            continue
        out.add(w)
    return out


def metric_known(name, known):
    if name in known:
        return True
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and name[: -len(suf)] in known:
            return True
    return False


def walk_panels(dash):
    for p in dash.get("panels", []) or []:
        yield p
        yield from walk_panels(p)


# ---------------------------------------------------------------------------------------
# The checks. Each returns a short detail string, or raises Fail / Skip.

class Deploy:
    def __init__(self):
        self.compose_text = (ROOT / "compose.yaml").read_text()
        self.raw = yaml.safe_load(self.compose_text)
        self.env_example = read_env_file(ROOT / ".env.example")
        # What compose sees with the committed example .env, and with no .env at all.
        self.with_example = interpolate(self.raw, self.env_example)
        self.with_defaults = interpolate(self.raw, {})
        self.svcs = self.with_example["services"]
        self.stages = parse_dockerfile(ROOT / "docker" / "Dockerfile")
        self.live_metrics = set()  # metric families seen on the running binaries' /metrics
        self.live_services = set()
        self.live_text = ""

    def stage(self, name):
        for s in self.stages:
            if s[0] == name:
                return s
        raise Fail(f"docker/Dockerfile has no stage {name!r}")

    def runtime_apt_packages(self):
        pkgs = []
        for instr, rest in self.stage("runtime")[2]:
            if instr == "RUN" and "apt-get install" in rest:
                seg = rest.split("apt-get install", 1)[1].split("&&", 1)[0]
                pkgs += [w for w in shlex.split(seg) if not w.startswith("-")]
        return pkgs

    # -- compose file ---------------------------------------------------------------------
    def check_schema_raw(self):
        if not SCHEMA.is_file():
            raise Skip(f"{SCHEMA} is absent: schema validation not run")
        import jsonschema
        schema = json.loads(SCHEMA.read_text())
        errs = sorted(jsonschema.Draft7Validator(schema).iter_errors(self.raw), key=str)
        need(not errs, "; ".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                                 for e in errs[:5]))
        return f"valid against {SCHEMA.name} (draft-07)"

    def check_schema_interpolated(self):
        if not SCHEMA.is_file():
            raise Skip(f"{SCHEMA} is absent: schema validation not run")
        import jsonschema
        schema = json.loads(SCHEMA.read_text())
        v = jsonschema.Draft7Validator(schema)
        for label, doc in (("with .env.example", self.with_example),
                           ("without .env", self.with_defaults)):
            errs = sorted(v.iter_errors(doc), key=str)
            need(not errs, label + ": " + "; ".join(
                f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errs[:5]))
        return "valid after interpolation with .env.example and with defaults only"

    def check_env_example(self):
        used = interp_vars(self.compose_text)
        ex = self.env_example
        missing = sorted(set(used) - set(ex))
        unused = sorted(set(ex) - set(used))
        need(not missing, f".env.example lacks {missing} (used in compose.yaml)")
        need(not unused, f".env.example sets {unused}, which compose.yaml never uses")
        drift = []
        for name, defaults in used.items():
            defaults.discard(None)
            need(len(defaults) <= 1, f"compose.yaml gives ${{{name}}} different defaults: "
                                     f"{sorted(defaults)}")
            if defaults and ex[name] != next(iter(defaults)):
                drift.append(f"{name}: .env.example {ex[name]!r} vs compose "
                             f"{next(iter(defaults))!r}")
        need(not drift, "; ".join(drift))
        return f"{len(used)} variables, same defaults in both"

    def check_images_pinned(self):
        pom = ET.parse(ROOT / "tools" / "kafka" / "pom.xml").getroot()
        ns = {"m": "http://maven.apache.org/POM/4.0.0"}
        kver = pom.find("m:properties/m:kafka.version", ns)
        need(kver is not None and kver.text, "tools/kafka/pom.xml has no <kafka.version>")
        images = {}
        for name, s in self.svcs.items():
            img = s.get("image")
            need(img or s.get("build"), f"service {name} has neither image nor build")
            if img and not s.get("build"):
                repo, _, tag = img.rpartition(":") if ":" in img.split("/")[-1] else (img, "", "")
                need(tag not in FLOATING_TAGS, f"service {name}: image {img} is not pinned")
            images[name] = img
        need(images.get("kafka") == f"apache/kafka:{kver.text}",
             f"kafka image {images.get('kafka')} != apache/kafka:{kver.text} "
             "(tools/kafka/pom.xml, what the local stack runs)")
        need(images.get("kafka-setup") == images["kafka"], "kafka-setup must use the kafka image")
        need(re.fullmatch(r"postgres:15\.\d+(-bookworm)?", images.get("postgres") or ""),
             f"postgres image {images.get('postgres')} is not a pinned postgres:15.x")
        need(re.fullmatch(r"kafbat/kafka-ui:v\d+\.\d+\.\d+", images.get("kafka-ui") or ""),
             f"kafka-ui image {images.get('kafka-ui')} is not a pinned kafbat/kafka-ui:vX.Y.Z")
        return f"kafka {kver.text} = pom.xml; {images['postgres']}; {images['kafka-ui']}"

    def check_app_services(self):
        app_image = None
        for name in APP_SERVICES:
            s = self.svcs.get(name)
            need(s, f"service {name} missing")
            b = s.get("build") or {}
            need(isinstance(b, dict) and b.get("dockerfile") == "docker/Dockerfile"
                 and b.get("context") == "." and b.get("target") == "runtime",
                 f"{name}: build must be context '.', docker/Dockerfile, target runtime")
            app_image = app_image or s.get("image")
            need(s.get("image") == app_image, f"{name}: image {s.get('image')} != {app_image}")
            need(s.get("restart") in ("unless-stopped", "always", "on-failure"),
                 f"{name}: restart policy {s.get('restart')!r}")
            need(s.get("stop_grace_period"), f"{name}: no stop_grace_period")
            need(s.get("healthcheck", {}).get("test"), f"{name}: no healthcheck")
            cmd = s.get("command")
            need(isinstance(cmd, list) and cmd and cmd[0] == name,
                 f"{name}: command must run the {name} binary, got {cmd!r}")
        return f"{', '.join(APP_SERVICES)} share image {app_image}"

    def check_kafka_listeners(self):
        k = self.svcs["kafka"]
        env = env_dict(k)
        need(env.get("KAFKA_PROCESS_ROLES") == "broker,controller", "kafka is not KRaft combined")
        listeners = dict(l.split("://") for l in env["KAFKA_LISTENERS"].split(","))
        adv = dict(l.split("://") for l in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
        need(set(adv) == set(listeners) - {env["KAFKA_CONTROLLER_LISTENER_NAMES"]},
             f"advertised listeners {sorted(adv)} vs listeners {sorted(listeners)}")
        internal = adv[env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
        need(internal.split(":")[0] == "kafka", f"internal listener {internal} is not kafka:PORT")
        host_ports = {(ip, hp, cp) for ip, hp, cp in published_ports(k)}
        host_adv = [v for n, v in adv.items() if n != env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
        need(len(host_adv) == 1, "want exactly one host listener")
        h_host, h_port = host_adv[0].rsplit(":", 1)
        hl_port = [n for n in listeners if adv.get(n) == host_adv[0]][0]
        cport = listeners[hl_port].rsplit(":", 1)[1]
        need(any(hp == h_port and cp == cport for _, hp, cp in host_ports),
             f"host listener advertises {host_adv[0]} but ports publish {sorted(host_ports)}")
        need(h_host in ("127.0.0.1", "localhost"), f"host listener advertises {h_host}")
        # Every client in the compose network must use the internal listener.
        for name, s in self.svcs.items():
            for var, val in env_dict(s).items():
                if var in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS",
                           "BOOTSTRAP"):
                    need(val == internal, f"{name}: {var}={val}, want {internal}")
        need("kafka-broker-api-versions" in str(k.get("healthcheck", {}).get("test")),
             "kafka healthcheck must ask the broker (kafka-broker-api-versions.sh)")
        return f"internal {internal}, host {host_adv[0]}"

    def check_ports_loopback(self):
        seen = []
        for label, doc in (("with .env.example", self.with_example),
                           ("without .env", self.with_defaults)):
            for name, s in doc["services"].items():
                for ip, hp, cp in published_ports(s):
                    need(ip == "127.0.0.1", f"{label}: {name} publishes {hp}:{cp} on "
                                            f"{ip or 'all interfaces'}")
                    seen.append(f"{name}:{hp}")
        return ", ".join(sorted(set(seen)))

    def check_scaling(self):
        fd = self.raw["services"]["fraud_detector"]
        need("container_name" not in fd, "fraud_detector has container_name (breaks --scale)")
        need("hostname" not in fd, "fraud_detector has a fixed hostname (breaks --scale)")
        need(not fd.get("ports"), "fraud_detector publishes host ports (breaks --scale)")
        need("TRANSACTIONAL_ID" not in env_dict(fd),
             "fraud_detector sets a fixed TRANSACTIONAL_ID (replicas would fence each other)")
        return "no container_name/hostname/host port/fixed TRANSACTIONAL_ID"

    def check_depends_on(self):
        def deps(name):
            d = self.svcs[name].get("depends_on") or {}
            return d if isinstance(d, dict) else {x: {"condition": "service_started"} for x in d}
        want = {"kafka-setup": {"kafka": "service_healthy"},
                "fraud_detector": {"kafka-setup": "service_completed_successfully"},
                "db_writer": {"kafka-setup": "service_completed_successfully",
                              "postgres": "service_healthy"},
                "interface": {"kafka-setup": "service_completed_successfully",
                              "postgres": "service_healthy", "db_writer": "service_healthy"}}
        for svc, w in want.items():
            d = deps(svc)
            for dep, cond in w.items():
                need(d.get(dep, {}).get("condition") == cond,
                     f"{svc} must depend on {dep} with {cond}, has {d.get(dep)}")
        for name in self.svcs:
            for dep, spec in deps(name).items():
                need(dep in self.svcs, f"{name} depends on unknown {dep}")
                if spec.get("condition") == "service_healthy":
                    need(self.svcs[dep].get("healthcheck"), f"{name} waits for {dep} healthy, "
                                                            f"which has no healthcheck")
        for name, svc in self.svcs.items():
            for dep in deps(name):
                need(set(self.svcs[dep].get("profiles", [])) <= set(svc.get("profiles", [])),
                     f"{name} depends on {dep}, which only runs in profiles "
                     f"{self.svcs[dep].get('profiles')}")
        need(self.svcs["kafka-setup"].get("restart", "no") == "no",
             "kafka-setup must not restart (it runs once and exits 0)")
        return "start order: kafka -> kafka-setup -> services; postgres -> db_writer -> interface"

    def check_volumes(self):
        declared = set(self.raw.get("volumes") or {})
        used = set()
        for name, svc in self.svcs.items():
            for v in svc.get("volumes", []) or []:
                src = v.get("source") if isinstance(v, dict) else str(v).split(":")[0]
                if src.startswith((".", "/", "~")):
                    need((ROOT / src).exists(), f"{name} mounts {src}, which does not exist")
                    continue
                need(src in declared, f"{name} uses volume {src}, not declared at top level")
                used.add(src)
        need(declared <= used, f"declared but unused volumes: {sorted(declared - used)}")
        for name, path in (("postgres", "/var/lib/postgresql/data"),
                           ("kafka", env_dict(self.svcs["kafka"]).get("KAFKA_LOG_DIRS"))):
            need(any(str(v).split(":")[1:2] == [path] and not str(v).startswith((".", "/"))
                     for v in self.svcs[name].get("volumes", [])),
                 f"{name} keeps {path} outside a named volume")
        return ", ".join(sorted(used))

    def check_healthchecks(self):
        svc_http = "".join(p.read_text() for p in (ROOT / "src" / "svc").glob("*.c"))
        need('"/readyz"' in svc_http, "src/svc serves no \"/readyz\"")
        out = []
        for name in APP_SERVICES:
            s = self.svcs[name]
            hc = healthcheck_url(s)
            need(hc, f"{name}: healthcheck is not an HTTP URL")
            host, port, path = hc
            env = env_dict(s)
            pvar = HTTP_PORT_ENV[name]
            need(host in ("127.0.0.1", "localhost"), f"{name}: healthcheck host {host}")
            need(path == "/readyz", f"{name}: healthcheck path {path}, want /readyz")
            need(env.get(pvar) == port, f"{name}: healthcheck port {port} != {pvar}={env.get(pvar)}")
            test = s["healthcheck"]["test"]
            need(test[0] == "CMD" and test[1] == "curl" and "-f" in "".join(test[2:4]),
                 f"{name}: healthcheck must fail on HTTP errors (curl -f)")
            out.append(f"{name}:{port}{path}")
        need("curl" in self.runtime_apt_packages(), "runtime image lacks curl for healthchecks")
        pg = " ".join(self.svcs["postgres"]["healthcheck"]["test"])
        need("pg_isready" in pg and "fraud_db" in pg, "postgres healthcheck must be pg_isready "
                                                      "on fraud_db")
        for name, envname, want_path in (("interface", "DETECTOR_HEALTH_URL", "fraud_detector"),
                                         ("interface", "WRITER_HEALTH_URL", "db_writer")):
            url = env_dict(self.svcs[name]).get(envname, "")
            m = re.fullmatch(r"http://([^:/]+):(\d+)(/\S*)", url)
            need(m and m.group(1) == want_path and m.group(3) in ("/readyz", "/healthz")
                 and m.group(2) == env_dict(self.svcs[want_path]).get("METRICS_PORT"),
                 f"{envname}={url} does not point at {want_path}'s health port")
        # kafka-ui (kafbat, Alpine-based: busybox wget, no curl) answers Spring Boot's
        # actuator on its container port 8080; wget exits non-zero on an HTTP error.
        ui = self.svcs.get("kafka-ui") or {}
        hc = healthcheck_url(ui)
        need(hc, "kafka-ui: no HTTP healthcheck")
        host, port, path = hc
        need(host in ("127.0.0.1", "localhost") and port == "8080"
             and path == "/actuator/health",
             f"kafka-ui: healthcheck http://{host}:{port}{path}, want "
             f"http://127.0.0.1:8080/actuator/health")
        test = ui["healthcheck"]["test"]
        need(test[0] == "CMD" and test[1] == "wget",
             "kafka-ui: the image has no curl; probe with busybox wget")
        need(any(str(p).endswith(":8080") for p in ui.get("ports") or []),
             "kafka-ui: container port 8080 not published")
        out.append(f"kafka-ui:{port}{path}")
        return ", ".join(out)

    def check_topics(self):
        setup_env = env_dict(self.svcs["kafka-setup"])
        topics = parse_topics(setup_env.get("TOPICS", ""))
        need(topics, "kafka-setup has no TOPICS")
        need(topics.get("transactions") == 3 and topics.get("scoring") == 3,
             f"transactions and scoring need 3 partitions, kafka-setup has {topics}")
        script = " ".join(str(x) for x in self.svcs["kafka-setup"].get("entrypoint", []))
        need('--replication-factor "$REPLICATION"' in script and "--if-not-exists" in script,
             "kafka-setup must create idempotently with replication factor $REPLICATION")
        # One broker by default (1, 1); cluster.env (profile cluster) sets 3 and 2.
        need(setup_env.get("REPLICATION") == "1" and setup_env.get("MIN_ISR") == "1",
             f"kafka-setup: REPLICATION/MIN_ISR must default to 1: {setup_env.get('REPLICATION')}"
             f" {setup_env.get('MIN_ISR')}")
        cluster = ROOT / "cluster.env"
        need(cluster.is_file(), "cluster.env (the 3-broker settings) is missing")
        cenv = dict(line.split("=", 1) for line in cluster.read_text().splitlines()
                    if line and not line.startswith("#"))
        need(cenv.get("COMPOSE_PROFILES") == "cluster" and cenv.get("KAFKA_REPLICATION") == "3"
             and cenv.get("KAFKA_MIN_ISR") == "2"
             and all(f"kafka{s}:29092" in cenv.get("KAFKA_BOOTSTRAP", "")
                     for s in ("", "-2", "-3")),
             f"cluster.env must select profile cluster, replication 3, min ISR 2 and bootstrap "
             f"from the three brokers: {cenv}")
        for b in ("kafka-2", "kafka-3"):
            need(self.svcs.get(b, {}).get("profiles") == ["cluster"],
                 f"{b} must exist in the cluster profile")
        # The services' topic settings must name created topics.
        for name in APP_SERVICES:
            for var, val in env_dict(self.svcs[name]).items():
                if var.endswith("_TOPIC"):
                    need(val in topics, f"{name}: {var}={val} is not created by kafka-setup")
        stack = ROOT / "scripts" / "stack"
        if not stack.is_file():
            raise Skip("scripts/stack not there yet: topics not compared with the local stack")
        text = stack.read_text()
        m = re.search(r"^TOPICS=\(([^)]*)\)", text, re.M)
        need(m, "found no TOPICS=(name:partitions ...) list in scripts/stack")
        stack_topics = parse_topics(m.group(1))
        need(stack_topics == topics, f"kafka-setup {topics} != scripts/stack {stack_topics}")
        return m.group(1) + " (= scripts/stack)"

    def check_kafka_setup_script(self):
        # Runs kafka-setup's own script (after compose interpolation, under /bin/sh) against a
        # real Kafka 3.9.1 broker started by scripts/stack (its jars, its own port and
        # directory), with kafka-topics.sh being Kafka's TopicCommand from the same jars.
        libs = ROOT / ".deps" / "kafka" / "libs"
        if not shutil.which("java") or not libs.is_dir():
            raise Skip("no java or .deps/kafka/libs (scripts/setup installs them)")
        script = self.svcs["kafka-setup"]["entrypoint"]
        need(script[:2] == ["/bin/sh", "-ec"] and len(script) == 3,
             f"kafka-setup entrypoint is not [/bin/sh, -ec, script]: {script[:2]}")
        env_setup = env_dict(self.svcs["kafka-setup"])
        ports = free_ports(2)
        with tempfile.TemporaryDirectory(prefix="deploy-kafka-") as d:
            stack_env = {**os.environ, "STACK_DIR": f"{d}/stack", "KAFKA_PORT": str(ports[0]),
                         "KAFKA_CONTROLLER_PORT": str(ports[1]), "STACK_SKIP_SETUP": "1",
                         "KAFKA_HEAP_OPTS": "-Xms64m -Xmx256m"}
            stack = [str(ROOT / "scripts" / "stack")]
            try:
                # One retry: the broker start competes for 2 shared cores with other suites.
                for attempt in (1, 2):
                    r = subprocess.run(stack + ["start-service", "kafka"], env=stack_env,
                                       capture_output=True, text=True, timeout=240)
                    if r.returncode == 0:
                        break
                    print(f"      kafka_setup_script: start {attempt} failed: "
                          f"{(r.stdout + r.stderr)[-300:]!r}")
                    subprocess.run(stack + ["down"], env=stack_env, capture_output=True,
                                   timeout=120)
                need(r.returncode == 0, f"scripts/stack start-service kafka exited "
                                        f"{r.returncode}: {(r.stdout + r.stderr)[-1500:]}")
                bindir = Path(d) / "bin"
                bindir.mkdir()
                tool = bindir / "kafka-topics.sh"
                tool.write_text("#!/bin/sh\nexec java -Xmx128m -Dlog4j.configuration=file:"
                                f"{ROOT}/tools/kafka/log4j-tools.properties -cp '{libs}/*' "
                                "org.apache.kafka.tools.TopicCommand \"$@\"\n")
                tool.chmod(0o755)
                body = script[2].replace("/opt/kafka/bin/", f"{bindir}/")
                need(body != script[2], "kafka-setup does not run /opt/kafka/bin tools")
                boot = f"127.0.0.1:{ports[0]}"

                def setup(topics):
                    r = subprocess.run(["/bin/sh", "-ec", body], capture_output=True, text=True,
                                       timeout=180, env={"PATH": os.environ["PATH"],
                                                         "BOOTSTRAP": boot, "TOPICS": topics,
                                                         "REPLICATION": "1", "MIN_ISR": "1"})
                    need(r.returncode == 0, f"kafka-setup script exited {r.returncode}: "
                                            f"{(r.stdout + r.stderr)[-400:]}")
                    return r.stdout
                # The stack made the real topics already: the script must leave them be
                # (idempotent); then it must create a new one.
                setup(env_setup["TOPICS"])
                extra = "deploy.check:2"
                out = setup(extra)
                got = dict(re.findall(r"Topic: (\S+)\s+TopicId: \S+\s+PartitionCount: (\d+)",
                                      out))
                for spec in (env_setup["TOPICS"] + " " + extra).split():
                    n, _, rest = spec.partition(":")
                    p, _, policy = rest.partition(":")
                    need(got.get(n) == p, f"after kafka-setup, {n} has {got.get(n)} "
                                          f"partitions, want {p}")
                    if policy:
                        line = re.search(rf"Topic: {re.escape(n)}\s+TopicId: .*", out)
                        need(line and f"cleanup.policy={policy}" in line.group(0),
                             f"after kafka-setup, {n} lacks cleanup.policy={policy}: "
                             f"{line.group(0) if line else None!r}")
            finally:
                subprocess.run(stack + ["down"], env=stack_env, capture_output=True, timeout=120)
        return f"created and re-ran idempotently on Kafka at {boot}"

    def check_binaries_env(self):
        exes = cmake_executables()
        built, missing, out = [], [], []
        for name in APP_SERVICES:
            if name not in exes:
                missing.append(f"src/{name} (no add_executable yet)")
                continue
            binary = BUILD / exes[name] / name
            if not binary.is_file():
                missing.append(str(binary.relative_to(ROOT)))
                continue
            opts, _ = help_options(binary)
            needed = run(["readelf", "-d", str(binary)]).stdout
            libpq = "libpq.so" in needed
            env = env_dict(self.svcs[name])
            for var in env:
                ok = (var in opts or var.startswith("KAFKA_")
                      or (libpq and var in LIBPQ_ENV))
                need(ok, f"{name}: compose sets {var}, which `{name} --help` does not list"
                         + (" (and it does not link libpq)" if var in LIBPQ_ENV else ""))
            pvar = HTTP_PORT_ENV[name]
            need(pvar in opts, f"{name} --help lacks {pvar}")
            if name == "interface":
                need(any(cp == env.get("LISTEN_PORT") for _, _, cp in
                         published_ports(self.svcs[name])),
                     f"interface publishes {published_ports(self.svcs[name])}, "
                     f"LISTEN_PORT={env.get('LISTEN_PORT')}")
                need(env.get("LISTEN_ADDR") == "0.0.0.0",
                     "interface must listen on 0.0.0.0 inside its container")
            else:
                need(env.get("METRICS_ADDR") == "0.0.0.0", f"{name}: METRICS_ADDR must be "
                     "0.0.0.0 in a container (Prometheus and the interface scrape it)")
            # Options whose default depends on the repository layout must resolve in the image.
            for var in ("MODEL_DIR", "MIGRATIONS_DIR", "WEB_DIR", "STATIC_DIR"):
                if var in opts:
                    val = env.get(var) or opts[var]
                    need(val.startswith("/opt/fraud/") or not val.startswith("/"),
                         f"{name}: {var}={val} is outside the image's /opt/fraud")
            built.append(name)
            out.append(f"{name}: {len(env)} env names ok")
        if missing:
            raise Skip(f"not built yet: {', '.join(missing)} (run scripts/build, or set "
                       f"DEPLOY_BUILD_DIR); checked: {'; '.join(out) or 'none'}")
        return "; ".join(out)

    def check_live_endpoints(self):
        # Starts each built binary with the environment compose gives it (addresses of other
        # containers pointed at a closed local port, its HTTP port at a free one, /opt/fraud
        # paths at the repository), then probes the health check URL, /healthz and /metrics
        # the way the healthcheck and Prometheus do, and stops it with SIGTERM like
        # `docker stop`, which must finish within stop_grace_period.
        import time
        import urllib.error
        import urllib.request
        exes = cmake_executables()
        out, todo = [], []
        svc_names = [n for n in self.svcs]

        def localize(val):
            val = re.sub(r"host=(%s) port=\d+" % "|".join(map(re.escape, svc_names)),
                         "host=127.0.0.1 port=1", val)
            val = re.sub(r"\b(%s):\d+" % "|".join(map(re.escape, svc_names)), "127.0.0.1:1", val)
            return val.replace("/opt/fraud/", f"{ROOT}/")

        def get(url):
            try:
                with urllib.request.urlopen(url, timeout=3) as r:
                    return r.status, r.read().decode(errors="replace")
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode(errors="replace")
            except OSError:
                return None, ""
        for name in APP_SERVICES:
            binary = BUILD / exes.get(name, "?") / name
            if not binary.is_file():
                todo.append(name)
                continue
            svc = self.svcs[name]
            env = {k: localize(v) for k, v in env_dict(svc).items() if v is not None}
            port = str(free_ports(1)[0])
            env[HTTP_PORT_ENV[name]] = port
            env["METRICS_ADDR" if name != "interface" else "LISTEN_ADDR"] = "127.0.0.1"
            env["PATH"] = "/usr/bin:/bin"
            _, _, path = healthcheck_url(svc)
            grace = float(str(svc["stop_grace_period"]).rstrip("s"))
            with tempfile.TemporaryFile() as log:
                p = subprocess.Popen([str(binary)] + svc["command"][1:], env=env, cwd=ROOT,
                                     stdout=log, stderr=subprocess.STDOUT)
                try:
                    t0 = time.monotonic()
                    code = None
                    while time.monotonic() - t0 < 15 and p.poll() is None:
                        code, body = get(f"http://127.0.0.1:{port}/healthz")
                        if code == 200:
                            break
                        time.sleep(0.2)
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-500:]
                    need(p.poll() is None, f"{name} exited {p.returncode} with the compose "
                                           f"environment: {tail!r}")
                    need(code == 200, f"{name}: /healthz answered {code}")
                    code, body = get(f"http://127.0.0.1:{port}{path}")
                    need(code in (200, 503) and '"ready"' in body,
                         f"{name}: healthcheck {path} answered {code} {body[:100]!r}")
                    mcode, metrics = get(f"http://127.0.0.1:{port}/metrics")
                    need(mcode == 200 and "# TYPE " in metrics, f"{name}: /metrics {mcode}")
                    self.live_metrics |= set(re.findall(r"^# TYPE (\S+)", metrics, re.M))
                    self.live_services.add(name)
                    self.live_text += metrics
                    p.send_signal(15)
                    t1 = time.monotonic()
                    try:
                        p.wait(timeout=grace)
                    except subprocess.TimeoutExpired:
                        raise Fail(f"{name} still running {grace:.0f} s after SIGTERM "
                                   f"(stop_grace_period): docker would SIGKILL it")
                    out.append(f"{name}: {path} {code}, stopped in "
                               f"{time.monotonic() - t1:.1f} s")
                finally:
                    if p.poll() is None:
                        p.kill()
                        p.wait()
        if todo:
            raise Skip(f"not built yet: {todo}; checked: {'; '.join(out) or 'none'}")
        return "; ".join(out)

    # -- Dockerfile -----------------------------------------------------------------------
    def check_dockerfile_build_stage(self):
        need(len(self.stages) == 2, f"want 2 stages (build, runtime), have {len(self.stages)}")
        for name, image, _ in self.stages:
            need(image == "debian:bookworm-slim", f"stage {name} is FROM {image}")
        setup_help = run([str(ROOT / "scripts" / "setup"), "--help"]).stdout
        runs = [rest for instr, rest in self.stage("build")[2] if instr == "RUN"]
        need(runs, "build stage runs nothing")
        ran_build = False
        for rest in runs:
            for cmd in re.split(r"\s*&&\s*", rest):
                words = shlex.split(cmd)
                if words[:3] == ["rm", "-rf", "/var/lib/apt/lists/*"]:
                    continue
                need(words[0] in ("scripts/setup", "scripts/build"),
                     f"build stage runs {cmd!r}; it may only run the CI scripts")
                for w in words[1:]:
                    if words[0] == "scripts/setup":
                        need(w.split("=")[0] in setup_help or w in setup_help,
                             f"scripts/setup does not document {w} (--help)")
                if words[0] == "scripts/build" or "--no-build" not in words:
                    ran_build = True
        need(ran_build, "the build stage never builds (scripts/setup without --no-build or "
                        "scripts/build)")
        # scripts/setup --profile=build must end in the release build the runtime copies from.
        setup = (ROOT / "scripts" / "setup").read_text()
        need(re.search(r"scripts/build release", setup),
             "scripts/setup --profile=build no longer runs `scripts/build release`")
        need("-B build " in (ROOT / "scripts" / "build").read_text(),
             "scripts/build release no longer builds into build/")
        return "; ".join(runs)

    def check_build_deps(self):
        setup = (ROOT / "scripts" / "setup").read_text()
        apt_build = bash_array(setup, "APT_BUILD")
        need(apt_build, "scripts/setup has no APT_BUILD list")
        # Every CMakeLists.txt scripts/build configures (the whole tree but local state).
        cml = "\n".join(p.read_text() for p in sorted(ROOT.rglob("CMakeLists.txt"))
                        if not docker_ignored(p.relative_to(ROOT).as_posix(),
                                              dockerignore_patterns()))
        mods = re.findall(r"pkg_check_modules\(\s*\w+\s+REQUIRED\s+IMPORTED_TARGET\s+([\w.+-]+)",
                          cml)
        need(mods, "no pkg_check_modules in CMakeLists.txt")
        owners = {}
        for mod in mods:
            r = run(["pkg-config", "--variable=pcfiledir", mod])
            if r.returncode != 0:
                raise Skip(f"pkg-config does not know {mod} here")
            owners[mod] = dpkg_owner(Path(r.stdout.strip()) / f"{mod}.pc")
        for hdr in re.findall(r"find_path\(\s*\w+\s+([\w./]+\.h)", cml):
            owners[hdr] = dpkg_owner(Path("/usr/include") / hdr)
        for lib in re.findall(r"find_library\(\s*\w+\s+(\w+)", cml):
            path = run(["gcc", f"-print-file-name=lib{lib}.so"]).stdout.strip()
            need(path.startswith("/"), f"gcc cannot find lib{lib}.so here")
            owners[f"lib{lib}.so"] = dpkg_owner(Path(os.path.normpath(path)))
        # build-essential brings the C library's -dev package (libm, libdl, pthread).
        owners = {k: v for k, v in owners.items() if v != "libc6-dev"}
        bad = {k: v for k, v in owners.items() if v not in apt_build}
        need(not bad, f"compiling needs packages missing from APT_BUILD: {bad}")
        return ", ".join(f"{k}<-{v}" for k, v in owners.items())

    def check_runtime_libs(self):
        pkgs = self.runtime_apt_packages()
        need(pkgs, "runtime stage installs no packages")
        need(not [p for p in pkgs if p.endswith("-dev")], f"-dev packages at runtime: {pkgs}")
        exes = cmake_executables()
        copied = [exe for exe, _ in self.copied_binaries()]
        todo = self.unwritten_targets()
        if todo:
            raise Skip(f"no add_executable yet for {todo}: cannot check their libraries")
        ldconfig = run(["ldconfig", "-p"]).stdout
        paths = {}
        for line in ldconfig.splitlines():
            m = re.match(r"\s*(\S+) \(([^)]*)\) => (\S+)", line)
            if m and "x86-64" in m.group(2) or (m and "64" not in m.group(2)):
                paths.setdefault(m.group(1), m.group(3))
        checked, missing = [], []
        for exe in copied:
            binary = BUILD / exes[exe] / exe
            if not binary.is_file():
                missing.append(exe)
                continue
            for lib in re.findall(r"Shared library: \[([^\]]+)\]", run(["readelf", "-d",
                                                                       str(binary)]).stdout):
                need(lib in paths, f"{exe}: {lib} not found by ldconfig")
                owner = dpkg_owner(paths[lib])
                need(owner, f"{exe}: no package owns {paths[lib]}")
                need(owner in pkgs or owner in BASE_PACKAGES,
                     f"{exe} needs {lib} from {owner}, which the runtime stage does not install")
                checked.append(f"{lib}<-{owner}")
        if missing:
            raise Skip(f"not built yet: {', '.join(missing)} (run scripts/build, or set "
                       f"DEPLOY_BUILD_DIR); checked: {', '.join(sorted(set(checked))) or 'none'}")
        return ", ".join(sorted(set(checked)))

    def copied_binaries(self):
        """Executables the runtime stage copies from the build stage, as (name, src dir)."""
        out = []
        for instr, rest in self.stage("runtime")[2]:
            if instr == "COPY" and rest.startswith("--from=build"):
                for src in shlex.split(rest)[1:-1]:
                    m = re.fullmatch(r"/src/build/(src/[^/]+)/([^/]+)", src)
                    need(m, f"runtime copies {src}, not a build/src/<dir>/<exe> binary")
                    out.append((m.group(2), m.group(1)))
        return out

    def unwritten_targets(self):
        """Copied binaries whose add_executable() does not exist (yet): Skip, clearly."""
        exes = cmake_executables()
        for exe, d in self.copied_binaries():
            need(exes.get(exe, d) == d, f"{exe} is built in {exes.get(exe)}, the Dockerfile "
                                        f"copies it from {d}")
        return [f"{d}/{exe}" for exe, d in self.copied_binaries() if exe not in exes]

    def check_runtime_stage(self):
        steps = self.stage("runtime")[2]
        users = [rest for instr, rest in steps if instr == "USER"]
        need(users, "runtime stage has no USER (would run as root)")
        user = users[-1].split(":")[0]
        need(user not in ("0", "root"), f"runtime runs as {users[-1]}")
        created = " ".join(rest for instr, rest in steps if instr == "RUN")
        need(re.search(rf"useradd\b[^&]*--uid {user}\b", created) or
             re.search(rf"useradd\b[^&]*\b{user}\b", created),
             f"USER {user} is never created")
        copied = [exe for exe, _ in self.copied_binaries()]
        need(set(APP_SERVICES) <= set(copied), f"runtime lacks binaries: "
                                               f"{set(APP_SERVICES) - set(copied)}")
        ep = [rest for instr, rest in steps if instr == "ENTRYPOINT"]
        if ep:
            ep_path = json.loads(ep[-1])[0]
            need(any(instr == "COPY" and rest.split()[-1] == ep_path for instr, rest in steps),
                 f"ENTRYPOINT {ep_path} is not copied into the image")
        envs = " ".join(rest for instr, rest in steps if instr in ("ENV", "WORKDIR"))
        model_dir = env_dict(self.svcs["fraud_detector"]).get("MODEL_DIR")
        need(model_dir and model_dir.startswith("/opt/fraud/"), f"MODEL_DIR={model_dir}")
        need("WORKDIR /opt/fraud" in "WORKDIR " + envs or
             any(instr == "WORKDIR" and rest == "/opt/fraud" for instr, rest in steps),
             "runtime WORKDIR must be /opt/fraud (the repository layout)")
        # MODEL_DIR must be a directory the image copies from the repository.
        rel = model_dir[len("/opt/fraud/"):]
        need(any(instr == "COPY" and not rest.startswith("--from") and
                 rel.startswith(shlex.split(rest)[0].rstrip("/")) for instr, rest in steps),
             f"MODEL_DIR {model_dir} is not copied from the repository")
        files = set(git_files())
        lacking = [f for f in ("model.txt", "stats.json", "metadata.json")
                   if f"{rel}/{f}" not in files]
        need(not lacking, f"the bundle the image copies lacks {lacking} in git ({rel}/)")
        todo = self.unwritten_targets()
        if todo:
            raise Skip(f"all else ok, but no add_executable yet for {todo}")
        return f"USER {users[-1]}, {len(copied)} binaries, MODEL_DIR {model_dir}"

    def check_copy_sources(self):
        files = git_files()
        pats = dockerignore_patterns()
        out = []
        for name, _, steps in self.stages:
            for instr, rest in steps:
                if instr != "COPY" or rest.startswith("--from"):
                    continue
                for src in shlex.split(rest)[:-1]:
                    if src == ".":
                        continue
                    s = src.rstrip("/")
                    tracked = [f for f in files if f == s or f.startswith(s + "/")]
                    need(tracked, f"COPY {src}: nothing tracked by git there (a fresh clone "
                                  f"would fail the build)")
                    kept = [f for f in tracked if not docker_ignored(f, pats)]
                    need(kept, f"COPY {src}: everything there is excluded by .dockerignore")
                    out.append(src)
        # Everything scripts/build compiles must be in the build context.
        cmake_dirs = ["CMakeLists.txt", "src/", "bench/", "scripts/setup", "scripts/build",
                      "tests/CMakeLists.txt", "tests/unit/", "tests/fuzz/", "web/"]
        tcm = (ROOT / "tests" / "CMakeLists.txt").read_text()
        cmake_dirs += [f"tests/{d}/" for d in re.findall(r"add_subdirectory\((\w+)\)", tcm)]
        lost = [f for f in files if any(f == d or f.startswith(d) for d in cmake_dirs)
                and docker_ignored(f, pats)]
        need(not lost, f".dockerignore drops files the build needs: {lost[:5]}")
        for must in (".git", "build", ".venv", ".env", "build-asan"):
            need(docker_ignored(must, pats), f".dockerignore does not exclude {must}")
        return "COPY " + ", ".join(out) + "; build inputs kept, local state excluded"

    def check_transactional_id(self):
        # --scale needs one transactional.id per replica, stable across a restart: the
        # binary derives it from the host name (a container's id) when TRANSACTIONAL_ID is
        # unset. Run the real binary in a private UTS namespace under two host names.
        exes = cmake_executables()
        need("fraud_detector" in exes, "no add_executable(fraud_detector)")
        binary = BUILD / exes["fraud_detector"] / "fraud_detector"
        if not binary.is_file():
            raise Skip(f"{binary.relative_to(ROOT)} not built yet")
        opts, _ = help_options(binary)
        need(opts.get("TRANSACTIONAL_ID") == "unset",
             f"TRANSACTIONAL_ID default is {opts.get('TRANSACTIONAL_ID')!r}, want unset "
             "(derived per instance)")
        unshare = shutil.which("unshare")
        probe = run([unshare, "-u", "true"]) if unshare else None
        if not probe or probe.returncode != 0:
            raise Skip("cannot unshare a UTS namespace here (needs root): only --help checked")
        ids = {}
        with tempfile.TemporaryDirectory() as empty:
            for host in ("c0ffee01", "beef0002"):
                env = {"PATH": "/usr/bin:/bin", "MODEL_DIR": empty, "METRICS_PORT": "0",
                       "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "LOG_LEVEL": "info"}
                r = run([unshare, "-u", "sh", "-c", f"hostname {host} && exec \"$0\"",
                         str(binary)], env=env)
                m = re.search(r'transactional\.id ([^\s"]+)', r.stdout + r.stderr)
                need(m, f"hostname {host}: no transactional.id in the start-up log "
                        f"(exit {r.returncode}): {(r.stdout + r.stderr)[-300:]!r}")
                ids[host] = m.group(1)
        need(ids["c0ffee01"] == "fraud_detector-c0ffee01" and len(set(ids.values())) == 2,
             f"transactional ids per host name: {ids}")
        need("TRANSACTIONAL_ID" not in env_dict(self.svcs["fraud_detector"]) and
             "INSTANCE_ID" not in env_dict(self.svcs["fraud_detector"]),
             "compose must leave TRANSACTIONAL_ID/INSTANCE_ID unset for --scale")
        return ", ".join(f"{h} -> {i}" for h, i in ids.items())

    # -- monitoring -----------------------------------------------------------------------
    def mount_source(self, service, target_prefix):
        for v in self.raw["services"][service].get("volumes", []):
            src, _, rest = str(v).partition(":")
            tgt = rest.split(":")[0]
            if tgt == target_prefix:
                return src
        return None

    def check_prometheus(self):
        p = self.svcs.get("prometheus")
        need(p and "monitoring" in p.get("profiles", []), "no prometheus in profile monitoring")
        cfg_arg = [a for a in p.get("command", []) if a.startswith("--config.file=")]
        need(cfg_arg, "prometheus has no --config.file")
        src = self.mount_source("prometheus", cfg_arg[0].split("=", 1)[1])
        need(src, f"{cfg_arg[0]} is not mounted from the repository")
        cfg = yaml.safe_load((ROOT / src).read_text())
        targets = {}
        for job in cfg.get("scrape_configs", []):
            need(job.get("metrics_path", "/metrics") == "/metrics",
                 f"job {job.get('job_name')}: metrics_path {job.get('metrics_path')}")
            for sc in job.get("static_configs", []):
                for t in sc.get("targets", []):
                    targets.setdefault(t.rsplit(":", 1)[0], set()).add(t.rsplit(":", 1)[1])
            for dc in job.get("dns_sd_configs", []):
                for n in dc.get("names", []):
                    targets.setdefault(n, set()).add(str(dc.get("port")))
        for name in APP_SERVICES:
            port = env_dict(self.svcs[name])[HTTP_PORT_ENV[name]]
            need(targets.get(name) == {port},
                 f"prometheus scrapes {name} on {targets.get(name)}, it serves on {port}")
        fd_dns = any("fraud_detector" in dc.get("names", [])
                     for job in cfg["scrape_configs"] for dc in job.get("dns_sd_configs", []))
        need(fd_dns, "fraud_detector must be found by DNS (every replica of --scale)")
        for host in targets:
            need(host in self.svcs or host == "localhost", f"prometheus target {host} is not "
                                                           f"a compose service")
        return ", ".join(f"{h}:{','.join(sorted(p))}" for h, p in sorted(targets.items()))

    def check_grafana(self):
        g = self.svcs.get("grafana")
        need(g and "monitoring" in g.get("profiles", []), "no grafana in profile monitoring")
        prov = self.mount_source("grafana", "/etc/grafana/provisioning")
        need(prov, "grafana provisioning is not mounted at /etc/grafana/provisioning")
        ds_files = list((ROOT / prov / "datasources").glob("*.y*ml"))
        need(ds_files, "no datasource provisioning file")
        uids = {}
        for f in ds_files:
            for ds in yaml.safe_load(f.read_text()).get("datasources", []):
                m = re.fullmatch(r"http://([^:/]+):(\d+)/?", ds.get("url", ""))
                need(m and m.group(1) == "prometheus" and
                     any(cp == m.group(2) for _, _, cp in published_ports(self.svcs["prometheus"])),
                     f"datasource url {ds.get('url')} is not the prometheus service port")
                uids[ds.get("uid")] = ds
        dash_files = []
        for f in (ROOT / prov / "dashboards").glob("*.y*ml"):
            for pr in yaml.safe_load(f.read_text()).get("providers", []):
                path = pr["options"]["path"]
                src = self.mount_source("grafana", path)
                need(src, f"dashboard provider path {path} is not mounted")
                dash_files += list((ROOT / src).glob("*.json"))
        need(dash_files, "no dashboard JSON")
        known = source_metric_names()
        used, titles, selectors = set(), [], []
        for f in dash_files:
            dash = json.loads(f.read_text())
            for p in walk_panels(dash):
                if p.get("type") == "row":
                    continue
                titles.append(p.get("title", ""))
                ds = p.get("datasource") or {}
                need(isinstance(ds, dict) and ds.get("uid") in uids,
                     f"{f.name}: panel {p.get('title')!r} uses datasource {ds}")
                for t in p.get("targets", []):
                    used |= promql_metrics(t.get("expr", ""))
                    selectors += re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}",
                                            t.get("expr", ""))
        unknown = sorted(n for n in used if not metric_known(n, known))
        need(not unknown, f"dashboard queries metrics no service exports: {unknown}")
        # Names of a service that ran in live_endpoints must be on its real /metrics page.
        not_live = sorted(n for n in used if any(n.startswith(s + "_") for s in
                                                 self.live_services)
                          and not metric_known(n, self.live_metrics))
        need(not not_live, f"dashboard metrics missing from the running services' /metrics: "
                           f"{not_live}")
        # Exact label matchers (result="valid", le="0.95") must select a served series.
        for metric, matchers in selectors:
            if not any(metric.startswith(s + "_") for s in self.live_services):
                continue
            for label, value in re.findall(r'(\w+)\s*=\s*"([^"]*)"', matchers):
                want = f'{label}="{value}"'
                need(re.search(rf"^{re.escape(metric)}\{{[^}}]*{re.escape(want)}", self.live_text,
                               re.M), f"no served series {metric}{{{want}}}")
        blob = " ".join(titles).lower()
        for topic in ("throughput", "latency", "lag", "fraud rate", "dlq"):
            need(topic in blob, f"dashboard has no panel about {topic}")
        return (f"{len(titles)} panels, {len(used)} metric names all registered in src/ "
                f"(and served live by {sorted(self.live_services) or 'none'})")

    # -- docs -----------------------------------------------------------------------------
    def doc_ports(self, text):
        return set(re.findall(r"(?:127\.0\.0\.1|localhost):(\d{2,5})\b", text))

    def known_ports(self):
        ports = set()
        for doc in (self.with_example, self.with_defaults):
            for s in doc["services"].values():
                ports |= {hp for _, hp, _ in published_ports(s)}
        stack = ROOT / "scripts" / "stack"
        if stack.is_file():
            ports |= set(re.findall(r"\b(\d{4,5})\b", stack.read_text()))
        return ports

    def check_readme(self):
        text = (ROOT / "README.md").read_text()
        need("docker compose up --build" in text, "README.md lacks `docker compose up --build`")
        unknown = sorted(self.doc_ports(text) - self.known_ports())
        need(not unknown, f"README.md mentions ports compose/stack do not use: {unknown}")
        if ".env" in text:
            need((ROOT / ".env.example").is_file(), "README mentions .env but no .env.example")
        return f"quick start present; ports {sorted(self.doc_ports(text))} all published/used"

    def check_docs(self):
        path = ROOT / "docs" / "deployment.md"
        need(path.is_file(), "docs/deployment.md missing")
        text = path.read_text()
        for s in self.svcs:
            need(f"`{s}`" in text or f" {s} " in text, f"docs/deployment.md never names {s}")
        for must in ("docker compose up --build", "scripts/stack up", ".env.example",
                     "--scale fraud_detector=3", "--profile monitoring"):
            need(must in text, f"docs/deployment.md lacks {must!r}")
        unknown = sorted(self.doc_ports(text) - self.known_ports())
        need(not unknown, f"docs/deployment.md mentions unused ports {unknown}")
        # Every setting the doc names in backticks must exist somewhere real: compose, the
        # binaries' --help, .env.example, scripts/stack, libpq (catches a renamed variable).
        known = set(LIBPQ_ENV) | set(self.env_example)
        for svc in self.raw["services"].values():
            known |= set(env_dict(svc))
        exes = cmake_executables()
        for name in APP_SERVICES:
            binary = BUILD / exes.get(name, "?") / name
            if not binary.is_file():
                raise Skip(f"{binary.relative_to(ROOT)} not built: doc settings not checked")
            opts, help_text = help_options(binary)
            known |= set(opts) | set(re.findall(r"\b([A-Z][A-Z0-9]*_[A-Z0-9_]+)=", help_text))
        stack = ROOT / "scripts" / "stack"
        if stack.is_file():
            known |= set(re.findall(r"\b([A-Z][A-Z0-9_]+)=", stack.read_text()))
        named = set(re.findall(r"`([A-Z][A-Z0-9]*_[A-Z0-9_]+)(?:=[^`]*)?`", text))
        named = {n for n in named if n not in ("APT_BUILD",)}
        bad = sorted(n for n in named - known if not n.startswith("KAFKA_<"))
        need(not bad, f"docs/deployment.md names settings nothing reads: {bad}")
        return f"all {len(self.svcs)} services, both ways to run, ports ok"


def main():
    verbose = "-v" in sys.argv[1:]
    passed = failed = skipped = 0
    try:
        d = Deploy()
    except Exception as e:  # noqa: BLE001 - every later check needs the parsed files
        print(f"FAIL  load: {e}")
        print("0 passed, 1 failed")
        return 1
    checks = [m for m in dir(d) if m.startswith("check_")]
    order = sorted(checks, key=lambda m: Deploy.__dict__[m].__code__.co_firstlineno)
    for m in order:
        label = m[len("check_"):]
        try:
            detail = getattr(d, m)()
            passed += 1
            print(f"ok    {label}" + (f": {detail}" if verbose and detail else ""))
        except Skip as e:
            skipped += 1
            print(f"SKIP  {label}: {e}")
        except Fail as e:
            failed += 1
            print(f"FAIL  {label}: {e}")
        except Exception:  # noqa: BLE001 - a crashing check is a failed check
            failed += 1
            print(f"FAIL  {label}: crashed\n{traceback.format_exc()}")
    if skipped:
        print(f"({skipped} skipped, see SKIP lines)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
