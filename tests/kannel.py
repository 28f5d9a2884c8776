"""A real Kannel (bearerbox + smsbox) and its fake SMSC on 127.0.0.1, for the SMS tests."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import free_tcp_port, require_binary

FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
_GOT = re.compile(r"Got message \d+: <(\S+) (\S+) (text|ucs-2|data|udh \S+) (.*)>$")


@dataclass
class Kannel:
    url: str
    out: Path

    def received(self, n: int, timeout: float = 15.0) -> list[tuple[str, str, str]]:
        """(from, to, text) of the first ``n`` messages the fake SMSC got (waits for them)."""
        deadline = time.monotonic() + timeout
        got: list[tuple[str, str, str]] = []
        while time.monotonic() < deadline:
            got = []
            for line in self.out.read_text(errors="replace").splitlines():
                m = _GOT.search(line)
                if m is None:
                    continue
                sender, to, coding, body = m.groups()
                text = urllib.parse.unquote_to_bytes(body).decode("utf-16-be") if coding == "ucs-2" else body
                got.append((sender, to, text))
            if len(got) >= n:
                return got
            time.sleep(0.2)
        raise AssertionError(f"the fake SMSC got {len(got)} of {n} messages: {got}")


@contextmanager
def start_kannel(tmp_path: Path, *, service: str = 'text = "ok"', mo: tuple[str, ...] = ()) -> Iterator[Kannel]:
    """bearerbox + smsbox + fakesmsc on free loopback ports. ``service``: the body of the default
    sms-service group (what Kannel does with a customer's text); ``mo``: fakesmsc message specs
    ("from to text BODY") it sends once each, as customers' texts, after the SMSC is online."""
    bearerbox = require_binary("bearerbox", "/usr/sbin/bearerbox")
    smsbox = require_binary("smsbox", "/usr/sbin/smsbox")
    fakesmsc = require_binary("fakesmsc", FAKESMSC)
    admin, box, smsc, http = (free_tcp_port() for _ in range(4))
    conf = tmp_path / "kannel.conf"
    conf.write_text(
        f"""group = core
admin-port = {admin}
admin-password = adminpw
smsbox-port = {box}
box-allow-ip = 127.0.0.1
admin-allow-ip = 127.0.0.1
log-file = "{tmp_path / 'bearerbox.log'}"

group = smsc
smsc = fake
smsc-id = FAKE
port = {smsc}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = {http}
sendsms-interface = 127.0.0.1
log-file = "{tmp_path / 'smsbox.log'}"

group = sendsms-user
username = vigil
password = vigilpw
max-messages = 10
concatenation = true

group = sms-service
keyword = default
{service}
""",
        encoding="utf-8",
    )
    out = tmp_path / "fakesmsc.out"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen([bearerbox, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_port(admin)
        procs.append(subprocess.Popen([smsbox, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_port(http)
        with out.open("wb") as fh:
            procs.append(subprocess.Popen(
                [fakesmsc, "-H", "127.0.0.1", "-r", str(smsc), "-i", "0.3", "-m", str(len(mo)),
                 *(mo or ("100 200 text hello",))],
                stdout=fh, stderr=subprocess.STDOUT,
            ))
        _wait_smsc_online(admin)
        yield Kannel(f"http://127.0.0.1:{http}", out)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answers on 127.0.0.1:{port}")


def _wait_smsc_online(admin: int, timeout: float = 15.0) -> None:
    """bearerbox's status page says the fake SMSC is connected (else the first send would queue)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"http://127.0.0.1:{admin}/status.txt?password=adminpw", timeout=2).text
        if re.search(r"FAKE\[FAKE\].*online", status) or "fake" in status.lower() and "online" in status:
            return
        time.sleep(0.2)
    raise AssertionError("the fake SMSC never came online")
