"""Stack config for the workspace's managed network outbound access
(``azml:workspace.packageRepositories``, ``outboundFqdns``, ``firewallSku``).

Image builds run on the workspace's image-build compute inside the managed
network. Under ``AllowOnlyApprovedOutbound`` that compute reaches only what
an outbound rule approves, so the package repositories a conda environment
installs from need FQDN outbound rules (Microsoft: "The compute resource used
to build Docker images needs to be able to access the package repositories
that are used to train and deploy your models. If you're using a network
configured to allow only approved outbound, you may need to add rules that
allow access to public repos" — how-to-managed-network, "Configure image
builds"). FQDN rules are implemented with an Azure Firewall that Azure
deploys and bills once the first FQDN rule exists.
"""

from __future__ import annotations

import re
from typing import Literal

#: Host names Microsoft lists for each package repository
#: (how-to-managed-network, "Scenario: Access public machine learning packages").
#: ``files.pythonhosted.org`` serves the files pypi.org indexes.
PACKAGE_REPOSITORY_HOSTS: dict[str, tuple[str, ...]] = {
    "conda-forge": ("*.anaconda.org",),
    "anaconda": ("anaconda.com", "*.anaconda.com", "*.anaconda.org"),
    "pypi": ("pypi.org", "*.pythonhosted.org"),
}

PackageRepository = Literal["conda-forge", "anaconda", "pypi"]
FirewallSku = Literal["Basic", "Standard"]

_FQDN = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
#: "If your managed network is configured to allow only approved outbound, you
#: can't use an FQDN rule to access Azure Storage Accounts. You must use a
#: private endpoint instead." (how-to-managed-network, Limitations)
_STORAGE_HOST = re.compile(r"\.(blob|file|queue|table|dfs|web)\.core\.windows\.net$")


def fqdn_problem(value: str) -> str | None:
    """Why ``value`` cannot be an FQDN outbound rule destination, or ``None``."""
    if not _FQDN.fullmatch(value):
        return f"{value!r} must be a lowercase host name, optionally starting with '*.' (e.g. pypi.org, *.anaconda.org)"
    if _STORAGE_HOST.search(value):
        return f"{value!r} is an Azure Storage host: reach storage through a private endpoint rule, not an FQDN rule"
    return None


def fqdn_rule_name(host: str) -> str:
    """Outbound rule name for an FQDN destination: ``fqdn-`` and the host,
    ``*`` spelled ``any`` and dots as hyphens (``*.anaconda.org`` ->
    ``fqdn-any-anaconda-org``)."""
    return "fqdn-" + host.replace("*", "any").replace(".", "-")
