"""Side-by-side benchmark of the lab manual's stock JupyterHub and pdal-hub."""

import sys
from pathlib import Path

# `python -m bench` from the checkout puts the checkout first on sys.path, where
# pdal_hub/ has no data files: the hubs must run the installed package instead.
_checkout = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _checkout]
