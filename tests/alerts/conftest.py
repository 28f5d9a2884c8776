"""Fixtures for the alerts tests: a real HTTP receiver, a fake clock, a SQLite file DB."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from alerts import AlertsBase
from detectors.event import Event, EventState

T0 = 1_700_000_000.0


class FakeClock:
    """A clock callable the test advances by hand."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Receiver:
    """A real webhook receiver on 127.0.0.1: records POST bodies, replies scripted statuses."""

    base_url: str
    bodies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    script: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def posts(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.bodies.get(path, []))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            with state.lock:
                state.bodies.setdefault(self.path, []).append(body)
                codes = state.script.get(self.path, [])
                code = codes.pop(0) if codes else 200
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = create_engine(db_url)
    AlertsBase.metadata.create_all(engine)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def make_event(
    state: EventState = EventState.FIRING,
    *,
    name: str = "LinkDown",
    element: str = "olt-1",
    at: float = T0,
    extra: tuple[tuple[str, str], ...] = (),
) -> Event:
    """An event as the detectors would emit it."""
    return Event(
        name=name,
        element=element,
        state=state,
        labels=(("alertname", name), ("element", element), ("ifName", "ge-0/0/1"), *extra),
        detector="ewma",
        series="if_in_utilization{ifName=ge-0/0/1}",
        value=0.97,
        expected=0.41,
        band=(0.2, 0.6),
        score=8.5,
        active_at=at - 120,
        fired_at=at if state is not EventState.PENDING else None,
        resolved_at=at if state is EventState.RESOLVED else None,
        summary=f"{name} on {element}",
    )
