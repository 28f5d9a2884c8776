"""The web app: health, Prometheus metrics, the JSON API and the hotline agent's page."""

from __future__ import annotations

import codecs
import hmac
import re
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from alerts.silence import Silence
from contingency.errors import IncidentNotOpenError
from contingency.scripts import is_gsm7
from contingency.sms import kannel_delivery
from contingency.store import SmsDelivery

__all__ = ["create_app"]

_TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{3,20}$")
_MAX_ID = 2**63 - 1  # the largest row id a database stores (SQLite, PostgreSQL BIGINT)


class _Contingency(Protocol):
    def list_incidents(self) -> list[dict[str, Any]]: ...
    def list_tickets(self) -> list[dict[str, Any]]: ...
    def list_banners(self, active_only: bool = True) -> list[dict[str, Any]]: ...
    def list_sms(self) -> list[dict[str, Any]]: ...
    def impact(self, phone: str) -> dict[str, Any]: ...
    def inbound_sms(self, sender: str, text: str) -> str | None: ...
    def delivery_report(self, message_id: str, status: SmsDelivery, detail: str = "") -> dict[str, Any]: ...
    def set_eta(self, incident_id: int, eta: float | None, *, by: str, note: str = "") -> dict[str, Any]: ...


class _Silences(Protocol):
    def now(self) -> datetime: ...
    def upsert(self, data: Mapping[str, Any]) -> str: ...
    def expire(self, silence_id: str) -> None: ...
    def get(self, silence_id: str) -> Silence: ...
    def list(self) -> list[Silence]: ...


class _Alerts(Protocol):
    def list_alerts(self, status: str | None = None, fingerprint: str | None = None) -> list[dict[str, Any]]: ...
    def list_notifications(self) -> list[dict[str, Any]]: ...


def create_app(
    *,
    registry: CollectorRegistry,
    render_device_metrics: Callable[[], str],
    alerts: _Alerts,
    contingency: _Contingency,
    status: Callable[[], dict[str, Any]],
    silences: _Silences | None = None,
    write_token: str | None = None,
) -> FastAPI:
    """Build the FastAPI app over the running rooms (they are only read here)."""
    app = FastAPI(title="vigil", version="0.1.0", docs_url="/api/docs", openapi_url="/api/openapi.json")

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/agent")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", **status()}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        body = generate_latest(registry) + render_device_metrics().encode("utf-8")
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/status")
    def api_status() -> dict[str, Any]:
        return status()

    @app.get("/api/v1/alerts")
    def api_alerts(
        status: str | None = None, fingerprint: Annotated[str | None, Query(max_length=64)] = None
    ) -> list[dict[str, Any]]:
        """Stored alerts, newest change first; ``?status=`` one status, ``?fingerprint=`` one alert."""
        if status not in (None, "pending", "firing", "resolved"):
            raise HTTPException(422, detail="status must be pending, firing or resolved")
        if fingerprint is None:
            return alerts.list_alerts(status)
        return alerts.list_alerts(status, fingerprint=fingerprint)

    @app.get("/alerts", response_class=HTMLResponse, include_in_schema=False)
    def alerts_page(
        request: Request, fingerprint: Annotated[str | None, Query(max_length=64)] = None
    ) -> HTMLResponse:
        """Where every alert's generatorURL points (``/alerts?fingerprint=<fp>``, in webhooks,
        mails and chat messages): that alert; without a fingerprint, the alerts firing now."""
        if fingerprint is None:
            shown = alerts.list_alerts("firing")
        else:
            shown = alerts.list_alerts(None, fingerprint=fingerprint)
        return _TEMPLATES.TemplateResponse(
            request, "alerts.html", {"alerts": shown, "fingerprint": fingerprint},
            status_code=404 if fingerprint is not None and not shown else 200,
        )  # fmt: skip

    @app.get("/api/v1/incidents")
    def api_incidents() -> list[dict[str, Any]]:
        return contingency.list_incidents()

    @app.get("/api/v1/tickets")
    def api_tickets() -> list[dict[str, Any]]:
        return contingency.list_tickets()

    @app.get("/api/v1/banners")
    def api_banners(all: bool = False) -> list[dict[str, Any]]:  # noqa: A002 - query name
        return contingency.list_banners(active_only=not all)

    @app.get("/api/v1/notifications")
    def api_notifications(channel: str | None = None) -> list[dict[str, Any]]:
        rows = contingency.list_sms() + alerts.list_notifications()
        if channel is not None:
            rows = [r for r in rows if r.get("channel") == channel]
        return rows

    @app.get("/api/v1/callers/{phone}/impact")
    def api_impact(phone: str) -> dict[str, Any]:
        if not _PHONE.match(phone):
            raise HTTPException(422, detail=f"not a phone number: {phone!r}")
        return contingency.impact(phone)

    @app.put("/api/v1/incidents/{incident_id}/eta", dependencies=[Depends(_writer(write_token))])
    def api_set_eta(incident_id: Annotated[int, PathParam(ge=1, le=_MAX_ID)], body: EtaBody) -> dict[str, Any]:
        """The NOC's expected restoration time (RFC 3339, or null to clear it): banners, hotline
        scripts and the outage texts not sent yet say it from now on."""
        try:
            eta = None if body.eta is None else _rfc3339(body.eta, "eta")
            return contingency.set_eta(incident_id, eta, by=body.by, note=body.note)
        except KeyError as err:
            raise HTTPException(404, detail=f"no incident {incident_id}") from err
        except IncidentNotOpenError as err:
            raise HTTPException(409, detail=str(err)) from err

    @app.get("/api/v1/sms/inbound", response_class=PlainTextResponse)
    def api_sms_inbound(
        request: Request,
        sender: Annotated[str, Query(alias="from", min_length=1, max_length=32)],
        text: Annotated[str, Query(max_length=1600)] = "",
        coding: Annotated[int | None, Query(ge=0, le=2)] = None,
        charset: Annotated[str | None, Query(max_length=32)] = None,
        token: str | None = None,
    ) -> PlainTextResponse:
        """A customer's text, as an SMS gateway forwards it (Kannel ``sms-service`` ``get-url``:
        ``.../api/v1/sms/inbound?from=%p&text=%a&coding=%c&charset=%C&token=...``; the token is
        http.write_token and is always required: a GET that opts customers out must not be
        reachable by a link). A phone sends Chinese as UCS-2, and Kannel passes those bytes on
        as they are (unless its smsbox has ``mo-recode``): with ``coding=2`` the text is read as
        UTF-16BE, with another ``charset`` in that charset, else as UTF-8.
        The body is the reply to text back (empty: none); Chinese replies carry
        ``X-Kannel-Coding: 2`` so Kannel sends them as UCS-2."""
        _gateway_token(write_token, token)
        if not _PHONE.match(sender.replace(" ", "")):
            raise HTTPException(422, detail=f"not a phone number: {sender!r}")
        if coding == 2 or charset:
            text = _gateway_text(request.url.query, "UTF-16BE" if coding == 2 else str(charset))
        reply = contingency.inbound_sms(sender, text) or ""
        headers = {} if is_gsm7(reply) else {"X-Kannel-Coding": "2"}
        return PlainTextResponse(reply, headers=headers)

    @app.get("/api/v1/sms/dlr")
    def api_sms_dlr(
        message_id: Annotated[str, Query(alias="id", min_length=1, max_length=64)],
        dlr_type: Annotated[int, Query(alias="type")],
        reply: Annotated[str, Query(max_length=1000)] = "",
        token: str | None = None,
    ) -> dict[str, Any]:
        """A delivery report for one customer text, as Kannel fetches its dlr-url (vigil's Kannel
        sink asks for ``.../api/v1/sms/dlr?token=...&id=<message id>&type=%d&reply=%A``).
        ``type`` is Kannel's report type (1 delivered, 2 not delivered, 4 queued on the SMSC,
        8 accepted by the SMSC, 16 rejected by it). Reports only move forward, so a late SMSC
        acknowledgement never undoes "delivered" and repeats change nothing. Token as for
        ``/api/v1/sms/inbound``: http.write_token, always required."""
        _gateway_token(write_token, token)
        try:
            status = kannel_delivery(dlr_type)
        except ValueError as err:
            raise HTTPException(422, detail=str(err)) from err
        try:
            return contingency.delivery_report(message_id, status, reply.strip())
        except KeyError as err:
            raise HTTPException(404, detail=f"no SMS with message id {message_id!r}") from err

    if silences is not None:
        _silence_routes(app, silences, write_token)

    @app.get("/agent", response_class=HTMLResponse, include_in_schema=False)
    def agent_page(request: Request) -> HTMLResponse:
        return _TEMPLATES.TemplateResponse(
            request,
            "agent.html",
            {"banners": contingency.list_banners(active_only=True), "status": status()},
        )

    @app.exception_handler(ValueError)
    async def value_error(_request: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    return app


def _gateway_text(query: str, charset: str) -> str:
    """The ``text`` parameter of a raw query string, its bytes decoded from ``charset``."""
    try:
        info = codecs.lookup(charset.strip() or "UTF-8")
    except LookupError as err:
        raise HTTPException(422, detail=f"charset: unknown character set {charset!r}") from err
    if not getattr(info, "_is_text_encoding", True):  # base64, rot13, zlib...: codecs, not charsets
        raise HTTPException(422, detail=f"charset: {charset!r} is not a character set")
    raw = urllib.parse.parse_qs(query, keep_blank_values=True, encoding="latin-1").get("text", [""])[-1]
    try:
        return raw.encode("latin-1").decode(info.name)
    except UnicodeDecodeError as err:
        raise HTTPException(422, detail=f"text: not valid {charset} ({err.reason})") from err
    except UnicodeError as err:  # e.g. idna's own checks
        raise HTTPException(422, detail=f"text: not valid {charset} ({err})") from err


class EtaBody(BaseModel):
    """``PUT /api/v1/incidents/{id}/eta``: when service is expected back, who says so, why."""

    model_config = ConfigDict(extra="forbid")

    eta: str | None
    by: Annotated[str, Field(min_length=1, max_length=200)]
    note: Annotated[str, Field(max_length=500)] = ""


def _rfc3339(value: str, what: str) -> float:
    """An RFC 3339 time with its zone (``Z`` or ``+08:00``) as epoch seconds; ValueError names ``what``."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as err:
        raise ValueError(f"{what}: {value!r} is not an RFC 3339 time") from err
    if parsed.tzinfo is None:
        raise ValueError(f"{what}: {value!r} needs a time zone (Z or +08:00)")
    try:
        parsed.astimezone(UTC)  # shown in UTC later: 0001-01-01T00:00+08:00 is year 0 there
    except OverflowError as err:
        raise ValueError(f"{what}: {value!r} is out of range (years 1-9999 in UTC)") from err
    return parsed.timestamp()


def _gateway_token(write_token: str | None, token: str | None) -> None:
    """An SMS gateway's callback (a GET that changes state) needs ``?token=<http.write_token>``;
    without a write token configured it is never open (403), even where other writes are."""
    if write_token is None:
        raise HTTPException(403, detail="set http.write_token to accept SMS gateway callbacks")
    if not hmac.compare_digest((token or "").encode(), write_token.encode()):
        raise HTTPException(401, detail="this gateway callback needs ?token=<http.write_token>")


def _writer(token: str | None) -> Callable[[Request], None]:
    """A dependency that lets a write through only with ``Authorization: Bearer <token>`` (if set)."""

    def check(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise HTTPException(
                401, detail="this API write needs Authorization: Bearer <http.write_token>",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check


def _silence_routes(app: FastAPI, silences: _Silences, write_token: str | None) -> None:
    """Alertmanager's ``/api/v2`` silence endpoints (amtool-compatible shapes), on vigil's clock."""
    writer = [Depends(_writer(write_token))]

    @app.get("/api/v2/silences")
    def list_silences() -> list[dict[str, Any]]:
        now = silences.now()
        return [s.to_api(now) for s in silences.list()]

    @app.post("/api/v2/silences", dependencies=writer)
    async def post_silence(request: Request) -> dict[str, str]:
        try:
            body = await request.json()
        except ValueError as err:
            raise HTTPException(400, detail=f"silence: body is not JSON: {err}") from err
        except RecursionError as err:
            raise HTTPException(400, detail="silence: body is nested too deeply to read") from err
        try:
            return {"silenceID": silences.upsert(body)}
        except KeyError as err:
            raise HTTPException(404, detail=f"silence {err.args[0]!r} not found") from err
        except ValueError as err:
            raise HTTPException(400, detail=str(err)) from err

    @app.get("/api/v2/silence/{silence_id}")
    def get_silence(silence_id: str) -> dict[str, Any]:
        try:
            return silences.get(silence_id).to_api(silences.now())
        except KeyError as err:
            raise HTTPException(404, detail=f"silence {silence_id!r} not found") from err

    @app.delete("/api/v2/silence/{silence_id}", dependencies=writer)
    def delete_silence(silence_id: str) -> dict[str, str]:
        try:
            silences.expire(silence_id)
        except KeyError as err:
            raise HTTPException(404, detail=f"silence {silence_id!r} not found") from err
        return {"status": "expired", "id": silence_id}
