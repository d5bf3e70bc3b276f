"""The hub settings of a standard install, for unit tests of the admin command."""

from __future__ import annotations

from pdal_hub.hubapi import HubSettings


def sample_settings(**overrides) -> HubSettings:
    """A standard install's HubSettings, with `overrides` replacing fields."""
    values = dict(
        config_file="/etc/jupyterhub/jupyterhub_config.py",
        public_url="http://127.0.0.1:8000",
        hub_api_url="http://127.0.0.1:8081/hub/api",
        bind_port=8000,
        hub_port=8081,
        proxy_api_port=8001,
        proxy_command=["configurable-http-proxy"],
        cookie_secret_file="/var/lib/pdal-hub/jupyterhub_cookie_secret",
        pid_file="/var/lib/pdal-hub/jupyterhub-proxy.pid",
        pam_service="pdal-hub",
        libs_root="/opt/jupyterhub-libs",
    )
    values.update(overrides)
    return HubSettings(**values)
