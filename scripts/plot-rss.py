#!/usr/bin/env python3
"""scripts/plot-rss.py OUT.png CSV...: the scanner's RSS over a scan (scripts/bench-scan BIG=M).

Each CSV has `seconds,rss_mb` rows sampled once a second; one line per file, labelled by the
file name's last part (`parquet`, `clickhouse`).
"""
import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    out, files = sys.argv[1], sys.argv[2:]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    for f in files:
        t, rss = [], []
        with open(f, newline="") as fh:
            for row in csv.DictReader(fh):
                t.append(float(row["seconds"]))
                rss.append(float(row["rss_mb"]))
        label = Path(f).stem.rsplit("-", 1)[-1]
        ax.plot(t, rss, label=f"{label} (peak {max(rss, default=0):.0f} MB)")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("scanner RSS (MB)")
    ax.set_title("mxray scan, lab in another process")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
