"""Size and type limits of the silences API: a refused body is a 400 naming the field, and writes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from alerts.silence import MAX_COMMENT, MAX_CREATED_BY, SilenceStore
from alerts.store import AlertsBase
from vigil.web import create_app

T0 = 1_700_000_000.0
TOKEN = "limits-token"


class Empty:
    """The alerts and contingency rooms, with nothing in them (only silences are used here)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: []


@pytest.fixture
def silences(tmp_path: Path) -> Iterator[SilenceStore]:
    engine = create_engine(f"sqlite:///{tmp_path / 'vigil.db'}")
    AlertsBase.metadata.create_all(engine)
    try:
        yield SilenceStore(sessionmaker(engine, expire_on_commit=False), clock=lambda: T0)
    finally:
        engine.dispose()


def post(silences: SilenceStore, body: dict[str, Any]) -> httpx.Response:
    app = create_app(registry=CollectorRegistry(), render_device_metrics=lambda: "", alerts=Empty(),
                     contingency=Empty(), status=lambda: {}, silences=silences, write_token=TOKEN)

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://vigil") as client:
            return await client.post("/api/v2/silences", json=body, headers={"Authorization": f"Bearer {TOKEN}"})

    return asyncio.run(go())


def body(**fields: Any) -> dict[str, Any]:
    return {"matchers": [{"name": "element", "value": "olt-a1", "isRegex": False, "isEqual": True}],
            "endsAt": "2030-01-01T00:00:00Z", "createdBy": "noc-li", "comment": "CHG-1 splice", **fields}


def test_comment_and_author_at_their_limits_are_accepted(silences: SilenceStore) -> None:
    r = post(silences, body(createdBy="a" * MAX_CREATED_BY, comment="c" * MAX_COMMENT))
    assert r.status_code == 200, r.text
    [silence] = silences.list()
    assert len(silence.created_by) == MAX_CREATED_BY and len(silence.comment) == MAX_COMMENT


@pytest.mark.parametrize(("field", "value"), [
    ("comment", "x" * 3_000_000),  # a 3 MB comment
    ("comment", "x" * (MAX_COMMENT + 1)),
    ("createdBy", "n" * (MAX_CREATED_BY + 1)),  # wider than the created_by column
    ("createdBy", 42),
    ("comment", ["CHG-1"]),
    ("comment", {"text": "CHG-1"}),
])
def test_a_too_long_or_non_string_author_or_comment_is_a_400_naming_it(
    silences: SilenceStore, field: str, value: Any
) -> None:
    r = post(silences, body(**{field: value}))
    assert r.status_code == 400, (r.status_code, r.text[:200])
    detail = r.json()["detail"]
    assert field in detail and len(detail) < 200, detail  # names the field, does not echo the value
    assert silences.list() == []  # nothing written


def test_updating_a_silence_with_a_too_long_comment_keeps_the_old_one(silences: SilenceStore) -> None:
    sid = silences.upsert(body())
    r = post(silences, body(id=sid, comment="x" * (MAX_COMMENT + 1)))
    assert r.status_code == 400 and "comment" in r.json()["detail"], r.text
    assert silences.get(sid).comment == "CHG-1 splice"
