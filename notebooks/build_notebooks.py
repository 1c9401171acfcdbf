"""Writes the four notebooks of notebooks/ (run after changing them here, then commit both).

    .venv/bin/python notebooks/build_notebooks.py

Kept as code so the notebooks share one set-up cell and stay free of outputs in git.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures go to PNG files beside the notebook
import matplotlib.pyplot as plt
import pandas as pd

sys.path.insert(0, str(Path.cwd()))
import mxray_sql

# A ClickHouse URL (http://user:pass@host:8123/mxray) or a Parquet directory (a scan's --out
# directory, a release of scripts/export-dataset, or a directory of those).
SOURCE = os.environ.get("MXRAY_SOURCE") or mxray_sql.default_source()
src = mxray_sql.connect(SOURCE)
print("source:", src.description)


def save(fig, name):
    """Save a figure as NAME.png beside the notebook."""
    path = Path.cwd() / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print("wrote", path)


def no_data(ax, what):
    ax.text(0.5, 0.5, f"no {what} in this data", ha="center", va="center")
    ax.set_axis_off()
'''


def notebook(title, intro, cells):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [new_markdown_cell(f"# {title}\n\n{intro}"), new_code_cell(SETUP)]
    for kind, text in cells:
        nb.cells.append(new_markdown_cell(text) if kind == "md" else new_code_cell(text))
    nb.cells.append(new_code_cell("src.close()"))
    return nb


ADOPTION = notebook(
    "Adoption over time",
    "STARTTLS, PKIX, DANE, MTA-STS and TLS-RPT adoption per scan date and vantage, over domains "
    "and over MX hosts and IPs; the TLS versions in use; the MX providers that serve the most "
    "domains. SQL: `sql/adoption_domains.sql`, `sql/adoption_hosts.sql`, `sql/tls_versions.sql`, "
    "`sql/mx_providers.sql`.",
    [
        ("code", '''\
adoption = src.run("adoption_domains")
adoption'''),
        ("code", '''\
metrics = ["starttls_all_share", "pkix_all_share", "dane_valid_share", "mta_sts_enforce_share",
           "mta_sts_compliant_share", "tls_rpt_share"]
fig, axes = plt.subplots(2, 3, figsize=(13, 6), sharex=True)
for ax, m in zip(axes.flat, metrics):
    if adoption.empty:
        no_data(ax, "scans")
        continue
    for vantage, g in adoption.groupby("vantage"):
        ax.plot(pd.to_datetime(g["scan_date"]), g[m] * 100, marker="o", label=vantage)
    ax.set_title(m.replace("_share", "").replace("_", " "))
    ax.set_ylabel("% of mail domains")
    ax.tick_params(axis="x", rotation=30)
axes.flat[0].legend(title="vantage")
fig.suptitle("Adoption per scan date (domains)")
save(fig, "adoption-domains")'''),
        ("code", '''\
hosts = src.run("adoption_hosts")
fig, ax = plt.subplots(figsize=(8, 4))
if hosts.empty:
    no_data(ax, "probes")
for vantage, g in hosts.groupby("vantage"):
    d = pd.to_datetime(g["scan_date"])
    ax.plot(d, g["mx_hosts_starttls_share"] * 100, marker="o", label=f"MX hosts, {vantage}")
    ax.plot(d, g["ips_starttls_share"] * 100, marker="s", linestyle="--", label=f"IPs, {vantage}")
ax.set_ylabel("% completing STARTTLS")
ax.legend()
ax.set_title("STARTTLS over MX hosts and IPs")
save(fig, "adoption-hosts")
hosts'''),
        ("code", '''\
src.run("tls_versions")'''),
        ("code", '''\
# suffix_labels=0 groups MX hosts by registrable domain (google.com, outlook.com). The lab's
# hosts all sit under lab.test, so group them by their last 3 labels instead.
providers = src.run("mx_providers", suffix_labels=3, top=8)
latest = providers[providers["scan_date"] == providers["scan_date"].max()] if not providers.empty else providers
fig, ax = plt.subplots(figsize=(8, 4))
if latest.empty:
    no_data(ax, "MX hosts")
else:
    v0 = sorted(latest["vantage"].unique())[0]
    top = latest[latest["vantage"] == v0].sort_values("domains")
    ax.barh(top["provider"], top["domains"])
    ax.set_xlabel(f"domains served (vantage {v0}, {top['scan_date'].iloc[0]})")
    ax.set_title("MX providers by domains served")
save(fig, "mx-providers")
latest'''),
    ],
)

DANE = notebook(
    "DANE health",
    "DANE classes per scan date (`sql/dane_classes.sql`), the domains whose secure TLSA records "
    "fail (`sql/dane_broken_domains.sql`), and the certificates about to expire that the most "
    "domains depend on (`sql/certs_expiring.sql`).",
    [
        ("code", '''\
classes = src.run("dane_classes")
classes'''),
        ("code", '''\
order = ["valid", "partial", "insecure", "bogus", "no_tls", "mismatch", "unusable"]
fig, axes = plt.subplots(1, max(1, classes["vantage"].nunique()), figsize=(12, 4), squeeze=False)
if classes.empty:
    no_data(axes[0][0], "domains")
for ax, (vantage, g) in zip(axes[0], classes.groupby("vantage")):
    table = g.pivot_table(index="scan_date", columns="dane", values="domains", aggfunc="sum").fillna(0)
    cols = [c for c in order if c in table.columns]
    if cols:
        table[cols].plot(kind="bar", stacked=True, ax=ax)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, title="dane")
    ax.set_title(f"DANE classes with TLSA records, vantage {vantage}")
    ax.set_ylabel("mail domains")
    ax.tick_params(axis="x", rotation=30)
save(fig, "dane-classes")'''),
        ("code", '''\
src.run("dane_broken_domains")'''),
        ("code", '''\
expiring = src.run("certs_expiring", days=30)
fig, ax = plt.subplots(figsize=(8, 4))
if expiring.empty:
    no_data(ax, "certificates expiring within 30 days")
else:
    top = expiring.head(15).iloc[::-1]
    ax.barh(top["subject"].str.slice(0, 40), top["domains"],
            color=["tab:red" if d < 0 else "tab:orange" for d in top["days_left"]])
    ax.set_xlabel("domains using the certificate (red: already expired)")
    ax.set_title(f"Certificates expiring within 30 days of {pd.Timestamp(expiring['scan_date'].iloc[0]).date()}")
save(fig, "certs-expiring")
expiring'''),
    ],
)

MTA_STS = notebook(
    "MTA-STS health",
    "MTA-STS status and fetch-error classes per scan date (`sql/mta_sts_classes.sql`) and the "
    "policies whose `mx` patterns do not cover the domain's MX hosts "
    "(`sql/mta_sts_mx_not_covered.sql`).",
    [
        ("code", '''\
sts = src.run("mta_sts_classes")
sts'''),
        ("code", '''\
published = sts[sts["mta_sts"] != "none"].copy()
published["class"] = published["mta_sts"] + published["error_class"].map(lambda e: f":{e}" if e else "")
fig, axes = plt.subplots(1, max(1, sts["vantage"].nunique()), figsize=(13, 4), squeeze=False)
if published.empty:
    no_data(axes[0][0], "MTA-STS records")
for ax, (vantage, g) in zip(axes[0], published.groupby("vantage")):
    table = g.pivot_table(index="scan_date", columns="class", values="domains", aggfunc="sum").fillna(0)
    table.plot(kind="bar", stacked=True, ax=ax, legend=False)
    ax.set_title(f"domains publishing MTA-STS, vantage {vantage}")
    ax.set_ylabel("domains")
    ax.tick_params(axis="x", rotation=30)
handles, labels = axes[0][0].get_legend_handles_labels()
if handles:
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), title="status:error")
save(fig, "mta-sts-classes")'''),
        ("code", '''\
src.run("mta_sts_mx_not_covered")'''),
    ],
)

STRIPPING = notebook(
    "STARTTLS stripping by vantage and network",
    "Stripping signals recorded by the scanner and found across vantages, per scan date, "
    "vantage and destination network (`sql/stripping_by_network.sql`, IP-to-AS from the "
    "`ip_asn` table: `scripts/load-asn`); the IPs that offer STARTTLS to one vantage and not "
    "another (`sql/vantage_disagreement.sql`); the IPs that stopped offering it "
    "(`sql/history_regression.sql`).",
    [
        ("code", '''\
signals = src.run("stripping_by_network")
signals'''),
        ("code", '''\
fig, ax = plt.subplots(figsize=(9, 4))
if signals.empty:
    no_data(ax, "stripping signals")
else:
    per = signals.groupby(["vantage", "signal"])["ips"].sum().unstack(fill_value=0)
    per.plot(kind="bar", stacked=True, ax=ax)
    ax.set_ylabel("IP:port destinations (summed over scan dates)")
    ax.set_title("Stripping signals by vantage")
    ax.tick_params(axis="x", rotation=0)
save(fig, "stripping-by-vantage")'''),
        ("code", '''\
fig, ax = plt.subplots(figsize=(9, 4))
if signals.empty:
    no_data(ax, "stripping signals")
else:
    s = signals.assign(network=signals["asn"].map(lambda a: f"AS{a}" if a else "unmapped")
                       + " " + signals["as_name"])
    per = s.groupby(["network", "signal"])["ips"].sum().unstack(fill_value=0)
    per.plot(kind="barh", stacked=True, ax=ax)
    ax.set_xlabel("IP:port destinations (summed over scan dates and vantages)")
    ax.set_title("Stripping signals by destination network")
save(fig, "stripping-by-network")'''),
        ("code", '''\
src.run("vantage_disagreement")'''),
        ("code", '''\
src.run("history_regression")'''),
        ("code", '''\
src.run("ip_asn_lookup").head(20)'''),
    ],
)

NOTEBOOKS = {
    "adoption.ipynb": ADOPTION,
    "dane.ipynb": DANE,
    "mta_sts.ipynb": MTA_STS,
    "stripping.ipynb": STRIPPING,
}

if __name__ == "__main__":
    for name, nb in NOTEBOOKS.items():
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)
