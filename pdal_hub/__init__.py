"""pdal-hub: JupyterHub for a teaching lab on one Linux server."""

__version__ = "0.1.0"
