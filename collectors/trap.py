"""The value the trap listener produces: one received notification (trap or inform), SNMPv2 form.

SNMPv1 traps arrive already translated as RFC 3584 section 3.1 says: the generic trap becomes
an ``snmpTraps`` OID (coldStart ``1.3.6.1.6.3.1.1.5.1`` ... egpNeighborLoss ``.5.6``), an
enterprise-specific one ``ENTERPRISE.0.SPECIFIC``; ``snmpTrapAddress.0`` and
``snmpTrapEnterprise.0`` are kept among the varbinds. ``snmpTrapCommunity.0`` is dropped:
a community is a secret.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "COLD_START",
    "LINK_DOWN",
    "LINK_UP",
    "SNMP_TRAP_ADDRESS",
    "SNMP_TRAP_OID",
    "SYS_UPTIME",
    "WARM_START",
    "Trap",
]

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
SNMP_TRAP_ADDRESS = "1.3.6.1.6.3.18.1.3.0"
COLD_START = "1.3.6.1.6.3.1.1.5.1"
WARM_START = "1.3.6.1.6.3.1.1.5.2"
LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
LINK_UP = "1.3.6.1.6.3.1.1.5.4"


@dataclass(frozen=True, slots=True)
class Trap:
    """One notification as received.

    ``varbinds`` are the (numeric OID, Python value) pairs after ``sysUpTime.0`` and
    ``snmpTrapOID.0``, values converted like :mod:`collectors.snmp` does (int, str, bytes,
    dotted str, None). ``security_name`` says who sent it without revealing a secret: the USM
    user name for v3, ``"community#N"`` (index in the listener's community list) for v1/v2c.
    ``uptime`` is the sender's sysUpTime in centiseconds; ``received_at`` is the listener's clock.
    """

    address: str
    port: int
    element: str | None
    version: str  # "1", "2c" or "3"
    trap_oid: str
    uptime: int | None
    varbinds: tuple[tuple[str, object], ...]
    received_at: float
    security_name: str
    is_inform: bool = False

    def value(self, oid: str, default: object = None) -> object:
        """The value of varbind ``oid`` (exact match), or ``default``."""
        for name, value in self.varbinds:
            if name == oid:
                return value
        return default

    def values_under(self, prefix: str) -> list[tuple[str, object]]:
        """The varbinds whose OID is ``prefix`` or below it, as (index suffix, value)."""
        dotted = prefix.rstrip(".") + "."
        return [(name[len(dotted) :], value) for name, value in self.varbinds if name.startswith(dotted)]

    @property
    def source(self) -> str:
        """The element name if known, else the sender's address."""
        return self.element or self.address
