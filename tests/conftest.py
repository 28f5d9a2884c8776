"""Shared test helpers: real local services, free ports.

A test that needs a service asks ``require_binary("snmpd")``. On a developer laptop without the
service it skips; under ``CI=true`` a missing service is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_binary(name: str, *candidates: str) -> str:
    """Path of executable ``name`` (or the first existing candidate path); skip or fail if absent."""
    for path in (shutil.which(name), *candidates):
        if path and os.path.exists(path):
            return path
    message = f"{name} is not installed (run scripts/install-services.sh)"
    if IN_CI:
        pytest.fail(message + " -- CI=true requires every service")
    pytest.skip(message)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
