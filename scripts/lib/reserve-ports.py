#!/usr/bin/env python3
"""reserve-ports.py STATE_DIR PORTFILE=NAME,NAME... [PORTFILE=NAME,...]

Chooses the TCP ports of the servers one state directory holds (a ClickHouse server, a
cluster's ZooKeeper and nodes) and writes each PORTFILE as `NAME=PORT` lines; a PORTFILE that
already names all its ports is kept (a restart reuses them).

Ports come from 20000-32000, below the kernel's ephemeral range (32768-60999 on Linux), so the
tests' own port-0 sockets and outgoing connections cannot take one between choice and bind, nor
while its server is down for a restart. Servers started at the same time (two tests) must not
choose the same port either, and a port that is free only because its server was stopped or
killed is still taken: so the choice runs under a machine-wide lock and records every state
directory's ports in a registry that later choices avoid; entries whose state directory is gone
are forgotten.
"""
import fcntl
import json
import os
import random
import socket
import sys

LOW, HIGH = 20000, 32000


def read_ports(path):
    try:
        with open(path) as f:
            return {k: int(v) for k, v in (line.strip().split("=", 1) for line in f if "=" in line)}
    except (OSError, ValueError):
        return {}


def main():
    state = os.path.realpath(sys.argv[1])
    wanted = []
    for arg in sys.argv[2:]:
        path, _, names = arg.rpartition("=")
        wanted.append((path, names.split(",")))
    registry = os.environ.get("MXRAY_PORT_REGISTRY") or os.path.join(
        os.environ.get("TMPDIR", "/tmp"), "mxray-ports"
    )
    with open(registry + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(registry) as f:
                known = {d: set(p) for d, p in json.load(f).items() if os.path.isdir(d)}
        except (OSError, ValueError):
            known = {}
        mine = set()
        for path, names in wanted:
            have = read_ports(path)
            if all(name in have for name in names):
                mine.update(have[name] for name in names)
        taken = set().union(*known.values()) - mine if known else set()

        def free_port():
            for _ in range(1000):
                port = random.randrange(LOW, HIGH)
                if port in taken or port in mine:
                    continue
                s = socket.socket()
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                finally:
                    s.close()
                mine.add(port)
                return port
            raise SystemExit(f"no free port in {LOW}-{HIGH}")

        for path, names in wanted:
            if all(name in read_ports(path) for name in names):
                continue
            with open(path, "w") as f:
                for name in names:
                    f.write(f"{name}={free_port()}\n")
        known[state] = mine
        tmp = f"{registry}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump({d: sorted(p) for d, p in known.items()}, f)
        os.replace(tmp, registry)


if __name__ == "__main__":
    main()
