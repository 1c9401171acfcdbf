"""The four notebooks execute headless (nbclient) on the example dataset and write their PNGs."""

import shutil

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from conftest import EXAMPLE, NOTEBOOKS

EXPECTED_PNGS = {
    "adoption.ipynb": ["adoption-domains.png", "adoption-hosts.png", "mx-providers.png"],
    "dane.ipynb": ["dane-classes.png", "certs-expiring.png"],
    "mta_sts.ipynb": ["mta-sts-classes.png"],
    "stripping.ipynb": ["stripping-by-vantage.png", "stripping-by-network.png"],
}


def test_every_notebook_is_covered():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(EXPECTED_PNGS)


@pytest.mark.parametrize("name", sorted(EXPECTED_PNGS))
def test_notebook_runs_headless_and_writes_pngs(name, tmp_path, monkeypatch):
    # A copy of notebooks/ so that the PNGs land beside the executed notebook, not in the tree.
    work = tmp_path / "notebooks"
    work.mkdir()
    shutil.copy(NOTEBOOKS / name, work / name)
    shutil.copy(NOTEBOOKS / "mxray_sql.py", work / "mxray_sql.py")
    shutil.copytree(NOTEBOOKS / "sql", work / "sql")
    monkeypatch.setenv("MXRAY_SOURCE", str(EXAMPLE))
    nb = nbformat.read(work / name, as_version=4)
    km = KernelManager(kernel_name="python3", transport="ipc", ip=str(tmp_path / "kernel"))
    client = NotebookClient(nb, km=km, timeout=120, resources={"metadata": {"path": str(work)}})
    client.execute()
    for png in EXPECTED_PNGS[name]:
        data = (work / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", png
        assert len(data) > 5000, png  # a drawn figure, not an empty canvas
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    # The source printed by the set-up cell is the example (MXRAY_SOURCE), not something else.
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))
    assert f"source: Parquet {EXAMPLE}" in text
