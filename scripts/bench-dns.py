#!/usr/bin/env python3
"""dnspython side of scripts/bench-dns: the same work as crates/dns/examples/dns_bench.rs
(per domain: MX, _mta-sts TXT, _smtp._tls TXT, DO bit set) with dnspython's asyncio resolver,
domains streamed from stdin with a bounded number in flight. Prints one JSON line of figures.

Usage: bench-dns.py IP PORT [IN_FLIGHT]   (loopback only)
"""
import asyncio
import ipaddress
import json
import resource
import sys
import time

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.resolver


async def one(res, domain, stats):
    for name, rdtype in ((domain, "MX"), ("_mta-sts." + domain, "TXT"), ("_smtp._tls." + domain, "TXT")):
        try:
            await res.resolve(name, rdtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            pass
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.exception.DNSException):
            stats["errors"] += 1


async def main():
    ip, port = sys.argv[1], int(sys.argv[2])
    if not ipaddress.ip_address(ip).is_loopback:
        sys.exit("benchmarks query loopback resolvers only")
    in_flight = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    res = dns.asyncresolver.Resolver(configure=False)
    res.nameservers = [ip]
    res.port = port
    res.timeout = 2.0
    res.lifetime = 6.0
    res.use_edns(0, dns.flags.DO, 1232)
    stats = {"errors": 0}
    domains = 0
    pending = set()
    start = time.monotonic()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        name = line.decode().strip()
        if not name:
            continue
        while len(pending) >= in_flight:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        pending.add(asyncio.ensure_future(one(res, name, stats)))
        domains += 1
    if pending:
        await asyncio.wait(pending)
    secs = time.monotonic() - start
    print(json.dumps({
        "tool": "dnspython-asyncio",
        "domains": domains,
        "lookups": domains * 3,
        "seconds": round(secs, 3),
        "lookups_per_sec": round(domains * 3 / secs),
        "errors": stats["errors"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }))


asyncio.run(main())
