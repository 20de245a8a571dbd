"""Which catalog a job points at, as one stable fingerprint, so state never outlives it.

Every piece of state that decides a delete (stored plans, grace records, the ledger, the
daily total, the shrink baseline, saved plans) is recorded with the fingerprint of the
target it was made for. A job repointed at another catalog (another ``catalog_id``,
``base_url``, project, tenant, client or environment), or a second config sharing the
``state_dir`` under the same job name, has another fingerprint and so starts fresh: no
old plan is sent to the new catalog, grace starts from zero, there is no shrink baseline.

Pure: plain values in, a hex digest out.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import urlsplit, urlunsplit

from reconciler.core.settings import Target

SHORT = 12  # hex digits shown in reports and log lines
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_base_url(url: str) -> str:
    """One spelling per address: scheme and host in lower case, no default port, no
    trailing slash, no query or fragment (``HTTPS://API.Exponea.com:443/`` is
    ``https://api.exponea.com``)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, netloc, path, "", ""))


def target_identity(target: Target) -> dict[str, object]:
    """The fields that name a catalog (never a credential: a rotated key is the same
    catalog)."""
    return {
        "backend": target.backend,
        "base_url": normalise_base_url(target.base_url),
        "catalog": target.catalog_id,
        # Each backend's own naming fields (Bloomreach: project; Adobe: tenant, environment);
        # the absent ones keep their old empty values so existing fingerprints stay equal.
        "project": "", "tenant": "", "environment": None,
        **target.settings.fingerprint_fields(),
    }


def target_fingerprint(target: Target) -> str:
    """sha256 of the canonical JSON of ``target_identity``: equal for the same catalog."""
    canonical = json.dumps(target_identity(target), sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def short(fingerprint: str | None) -> str | None:
    return fingerprint[:SHORT] if fingerprint else None
