#!/usr/bin/env python3
"""postfix-mta-sts-resolver side of scripts/bench-mta-sts: the STSResolver.resolve() behind
`mta-sts-query`, run in-process against the same loopback HTTPS server as mxray.

DNS is stubbed (TXT answered in-process, mta-sts.d<i>.bench.test mapped to 127.0.0.1:PORT by
an aiohttp resolver) so nothing reaches the system resolver or any outside address.
Usage: mtasts-bench-resolver.py DIR DOMAINS ROUNDS CONCURRENCY
"""

import asyncio
import os
import resource
import ssl
import sys
import time

import aiohttp
from aiohttp.abc import AbstractResolver
from postfix_mta_sts_resolver import resolver as res_mod

for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    os.environ.pop(var, None)


class FakeTxt:
    def __init__(self, text):
        self.text = text


class StubDns:
    def __init__(self, *args, **kwargs):
        pass

    async def query(self, name, qtype):
        assert name.startswith("_mta-sts.") and name.endswith(".bench.test") and qtype == "TXT"
        return [FakeTxt("v=STSv1; id=1;")]


def main():
    d, domains, rounds, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    port = int(open(os.path.join(d, "port")).read().strip())
    cctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))

    class LoopbackResolver(AbstractResolver):
        async def resolve(self, host, port_=0, family=0):
            if not (host.startswith("mta-sts.") and host.endswith(".bench.test")):
                raise OSError(f"refusing to resolve {host!r}")
            return [{"hostname": host, "host": "127.0.0.1", "port": port,
                     "family": 2, "proto": 0, "flags": 0}]

        async def close(self):
            pass

    real_session = aiohttp.ClientSession

    def session(*args, **kwargs):
        kwargs.pop("loop", None)
        kwargs["connector"] = aiohttp.TCPConnector(resolver=LoopbackResolver(), ssl=cctx)
        return real_session(*args, **kwargs)

    res_mod.aiodns.DNSResolver = StubDns
    res_mod.aiohttp.ClientSession = session

    async def run():
        r = res_mod.STSResolver(timeout=10, loop=asyncio.get_running_loop())
        sem = asyncio.Semaphore(conc)

        async def one(i):
            async with sem:
                verdict, _ = await r.resolve(f"d{i}.bench.test")
                return verdict.name == "VALID"

        jobs = [one(i) for _ in range(rounds) for i in range(domains)]
        t0 = time.perf_counter()
        res = await asyncio.gather(*jobs)
        return res, time.perf_counter() - t0

    res, secs = asyncio.run(run())
    ok = sum(res)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"resolver fetches={len(res)} ok={ok} failed={len(res) - ok} seconds={secs:.2f} "
          f"per_sec={len(res) / secs:.0f} peak_rss_kib={rss}")


if __name__ == "__main__":
    main()
