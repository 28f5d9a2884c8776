"""Build SNMP targets from the site configuration: defaults per element, secrets resolved.

Secrets come from config's :func:`~config.load.resolve_secret` (inline, environment variable or
file, first line); they go into :class:`~collectors.snmp.Target`, whose ``repr`` never shows
them, and are never logged. Errors name the element and the credential, never a secret value.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from collectors.snmp import Target
from config.load import resolve_secret
from config.models import Credential, Element, SiteConfig, SnmpDefaults

__all__ = ["TargetConfigError", "target_for", "targets_for"]


class TargetConfigError(ValueError):
    """An element's SNMP settings cannot be turned into a target."""

    def __init__(self, element: str, message: str) -> None:
        super().__init__(f"element {element}: {message}")
        self.element = element


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def target_for(
    element: Element,
    credential: Credential,
    defaults: SnmpDefaults | None = None,
    *,
    base: Path | None = None,
) -> Target:
    """The target for one element polled with ``credential``; ``base`` anchors relative secret files."""
    defaults = defaults or SnmpDefaults()
    try:
        community = resolve_secret(
            credential.community, credential.community_env, credential.community_file, base=base
        )
        auth_key = resolve_secret(
            credential.auth_key, credential.auth_key_env, credential.auth_key_file, base=base
        )
        priv_key = resolve_secret(
            credential.priv_key, credential.priv_key_env, credential.priv_key_file, base=base
        )
        common = {
            "element": element.name,
            "host": element.host,
            "port": element.port,
            "version": credential.version,
            "timeout": element.timeout if element.timeout is not None else defaults.timeout,
            "retries": element.retries if element.retries is not None else defaults.retries,
            "max_repetitions": element.max_repetitions or defaults.max_repetitions,
        }
        if credential.version != "3":
            return Target(community=_secret(community) or "public", **common)  # type: ignore[arg-type]
        return Target(
            user=credential.user,
            auth_protocol=credential.auth_protocol,
            auth_key=_secret(auth_key),
            priv_protocol=credential.priv_protocol,
            priv_key=_secret(priv_key),
            **common,  # type: ignore[arg-type]
        )
    except ValueError as err:  # resolve_secret and Target messages carry no secret values
        raise TargetConfigError(element.name, f"credential {element.credential}: {err}") from err


def targets_for(site: SiteConfig, *, base: Path | None = None) -> list[Target]:
    """One SNMP target per element (v1, v2c or v3), with defaults and resolved secrets."""
    defaults = site.snmp.defaults
    targets = []
    for element in site.elements:
        credential = site.snmp.credentials.get(element.credential)
        if credential is None:
            raise TargetConfigError(element.name, f"undefined credential '{element.credential}'")
        targets.append(target_for(element, credential, defaults, base=base))
    return targets
