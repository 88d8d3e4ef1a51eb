"""Checks that tests/container/run's start stages follow compose.yaml's depends_on.

usage: check_stages.py CONFIG.yaml "svc svc | svc | ..."
CONFIG is `podman-compose config` output. Every dependency of a service must be in an
earlier stage, and every service outside a profile must be in some stage. Prints one line
per problem and exits 1 if there is any.
"""
import sys

import yaml


def main():
    services = yaml.safe_load(open(sys.argv[1]))["services"]
    stages = [s.split() for s in sys.argv[2].split("|")]
    started, errors = set(), []
    for stage in stages:
        for name in stage:
            if name not in services:
                errors.append("stage service %s is not in compose.yaml" % name)
                continue
            deps = services[name].get("depends_on") or {}
            errors += ["%s depends on %s, which no earlier stage starts" % (name, d)
                       for d in deps if d not in started]
        started.update(stage)
    wanted = {n for n, s in services.items() if not s.get("profiles")}
    errors += ["service %s is in no stage" % n for n in sorted(wanted - started)]
    print("\n".join(errors))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
