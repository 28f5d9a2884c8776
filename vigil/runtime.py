"""Wiring: build every room from the site config and run them on one asyncio loop.

collectors.Poller -> samples queue -> detectors.DetectionEngine -> events
    -> alerts.AlertPipeline (NOC channels) and contingency.ContingencyManager (customers).
APScheduler drives polls (per element interval), trap-alert expiry, alert delivery and SMS
ticks, each a job of its own (one slow job never delays another; notifications are sent by tasks
of their own, so a hanging receiver holds up nothing else); uvicorn serves the web app in the same
loop. Every interval is simulated time divided by the clock's speedup, so agents, pollers,
detectors and hold-downs follow one clock.

SIGTERM and SIGINT stop the service gracefully: polls under way finish, the web server stops,
notifications in flight get ``SEND_GRACE`` seconds and are then put back in the outbox (sent
after the restart), state is saved, and the process exits 0. A second signal skips the waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CollectorRegistry, Gauge

from alerts import AlertPipeline
from alerts.silence import SilenceStore
from collectors import Poller, SnmpMetricsExporter
from collectors.client import Client
from collectors.profiles import load_profiles
from collectors.sample import Sample
from collectors.targets import target_for, targets_for
from collectors.trap import Trap
from collectors.traps import TrapListener, V3User
from config import Customer, Element, SiteConfig
from config.load import resolve_secret
from config.models import is_wildcard
from contingency import ContingencyManager, Topology, sink_from_config
from contingency.maintenance import MaintenanceLookup, MaintenanceWindow
from contingency.sms import kannel_escape
from detectors import DetectionEngine, Event
from detectors.reachability import ReachabilityRule
from detectors.traps import TrapRules
from vigil.clock import CLOCK_FILE, Clock, save_time
from vigil.db import create_database
from vigil.web import create_app

__all__ = ["SEND_GRACE", "Runtime", "RuntimeOptions", "listen_sockets"]

log = logging.getLogger("vigil")
_SAVE_LOCK = threading.Lock()  # Runtime.save_state: one save at a time
SEND_GRACE = 5.0  # wall seconds a graceful stop waits for notifications in flight
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Server(uvicorn.Server):
    """uvicorn, leaving the signals to the runtime: uvicorn would re-raise a SIGTERM the moment
    the web server stopped, killing the process before the runtime's own stop sequence ran
    (notifications in flight stranded, state not saved)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen_sockets(host: str, port: int) -> list[socket.socket]:
    """Bind the web app's address(es) (as asyncio's ``create_server`` would) before anything starts.

    Raises ``OSError`` naming the address (``127.0.0.1:8080 is already in use``), so a taken port
    is one clear line instead of a banner announcing URLs nobody serves and a traceback."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    sockets: list[socket.socket] = []
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, sockaddr in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
    except OSError as err:
        for sock in sockets:
            sock.close()
        if isinstance(err, socket.gaierror):
            message = f"the HTTP address {address} cannot be resolved: {err.strerror}"
        elif err.errno == errno.EADDRINUSE:
            message = (f"the HTTP address {address} is already in use (another vigil running?); "
                       "choose another with --http or http.listen")  # fmt: skip
        else:
            message = f"cannot listen on the HTTP address {address}: {err.strerror or err}"
        error = OSError(message)
        error.errno = err.errno
        raise error from None
    return sockets


@dataclass
class RuntimeOptions:
    """How to run: where to listen, where to keep data, how fast the clock runs."""

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    data_dir: Path = Path("vigil-data")
    db_url: str | None = None
    speedup: float = 1.0
    duration: float | None = None
    external_url: str | None = None
    config_dir: Path | None = None  # relative secret files are relative to the config file
    banner: Sequence[str] = field(default_factory=list)
    echo: Callable[[str], None] = print


def maintenance_lookup(silences: SilenceStore) -> MaintenanceLookup:
    """Contingency's view of the NOC's silences: an active silence that was announced ahead of its
    start (``startsAt`` later than its creation) and mutes an event's labels is a maintenance
    window: customers are not texted unless the work overruns. An ad-hoc silence (starting when it
    is made) only quiets the NOC's channels; customers are still cared for."""

    def lookup(labels: Mapping[str, str]) -> MaintenanceWindow | None:
        silence = silences.matching(labels, scheduled=True)
        if silence is None:
            return None
        return MaintenanceWindow(
            id=silence.id, starts_at=silence.starts_at.timestamp(), ends_at=silence.ends_at.timestamp(),
            comment=silence.comment, created_by=silence.created_by,
        )

    return lookup


class Runtime:
    """The whole service for one site."""

    def __init__(
        self,
        site: SiteConfig,
        customers: Sequence[Customer],
        options: RuntimeOptions,
        *,
        clock: Clock | None = None,
        lab: Any | None = None,
    ) -> None:
        self.site = site
        self.options = options
        self.clock = clock or Clock(speedup=options.speedup)
        self.lab = lab
        options.data_dir.mkdir(parents=True, exist_ok=True)
        db_url = options.db_url or f"sqlite:///{(options.data_dir / 'vigil.db').resolve()}"
        self.engine, self.sessions = create_database(db_url)
        self.registry = CollectorRegistry()
        self.started_wall = time.monotonic()
        self.queue: asyncio.Queue[list[Sample]] = asyncio.Queue(maxsize=10_000)

        now = self.clock.now
        self.targets = targets_for(site, base=options.config_dir)
        base = options.config_dir or Path.cwd()  # profile_dirs are relative to the config file
        profiles = load_profiles([Path(d) if Path(d).is_absolute() else base / d for d in site.snmp.profile_dirs])
        d = site.snmp.defaults
        self.client = Client()
        self.exporter = SnmpMetricsExporter()
        self.poller = Poller(
            self.client,
            self.targets,
            areas={el.name: el.area for el in site.elements},
            exporter=self.exporter,
            registry=self.registry,
            on_samples=self._on_samples,
            on_status=self._on_samples,
            clock=now,
            concurrency=site.snmp.concurrency,
            intervals={el.name: (el.interval or d.interval) / self.clock.speedup for el in site.elements},
            profiles=profiles,
            label_refresh=site.snmp.label_refresh,
        )
        self.reachability = ReachabilityRule(failures=site.detectors.unreachable_after)
        # traps and polled ifOperStatus: one damped InterfaceDown per port, held like the rules
        self.trap_rules = TrapRules(
            restart_hold=site.traps.restart_hold,
            enterprise={oid: (r.alertname, r.severity) for oid, r in site.traps.enterprise.items()},
            keep_firing_for=site.detectors.keep_firing_for,
            if_types=lambda element, index: self.poller.interface_type(element, index),
        )
        self.traps = self._trap_listener(site, options)
        self.state_path = options.data_dir / "detectors.npz"
        self.link_state_path = options.data_dir / "link-state.json"
        # a simulated clock (the lab's, or a speedup) is kept, so a restart continues from it
        self.clock_path = options.data_dir / CLOCK_FILE if lab is not None or self.clock.speedup != 1 else None
        self._load_link_state()
        self.detector = self._detection_engine(site)
        external = options.external_url or site.http.public_url or f"http://{options.http_host}:{options.http_port}"
        self.alerts = AlertPipeline(
            self.sessions,
            site.alerts,
            clock=now,
            external_url=external,
            registry=self.registry,
            parents={el.name: el.parent for el in site.elements if el.parent},  # topology inhibition
            secrets_dir=options.config_dir,  # relative auth_password_file
        )
        # alerts still firing before a restart, under their labels and start times: a port's next
        # "up" (polled or a linkUp) resolves its InterfaceDown, an element's next good poll its
        # ElementUnreachable, a DeviceRestarted / enterprise alarm resolves its hold after it fired
        firing = self.alerts.list_alerts("firing")
        labels = [a["labels"] for a in firing]
        since = [datetime.fromisoformat(a["starts_at"].replace("Z", "+00:00")).timestamp() for a in firing]
        for what, rule in (("trap rules", self.trap_rules), ("reachability", self.reachability)):
            if restored := rule.restore(labels, now(), fired_at=since):
                log.info("%s: %d alerts still firing from before the restart taken back", what, restored)
        if lab is not None:
            self._announce_lab_works(getattr(lab, "works", []))
        write_token = self._write_token(site, options)
        sink = sink_from_config(site.contingency.sms, options.data_dir, clock=now, base=options.config_dir,
                                dlr_url=self._dlr_url(site, options, write_token))
        self.topology = Topology(site.elements, site.areas, customers)
        self.contingency = ContingencyManager(
            self.sessions, self.topology, site.contingency, sink, clock=now, registry=self.registry,
            maintenance=maintenance_lookup(self.alerts.silences),
        )
        self._events_total = Gauge(
            "vigil_detector_series", "Series tracked by the detectors", registry=self.registry
        )
        self.app = create_app(
            registry=self.registry,
            render_device_metrics=self.exporter.render,
            alerts=self.alerts,
            contingency=self.contingency,
            status=self.status,
            silences=self.alerts.silences,
            write_token=write_token,
        )
        self.scheduler: AsyncIOScheduler | None = None
        self._inflight: set[asyncio.Task[Any]] = set()  # scheduled jobs under way
        self._signals: list[int] = []  # stop signals received
        self._stop = asyncio.Event()
        self._inflight_events: set[asyncio.Task[None]] = set()

    def _announce_lab_works(self, works: Sequence[Any]) -> None:
        """The lab's planned works become maintenance windows, announced now, ahead of them, as a
        NOC would (a silence per work; the same one is not announced twice across restarts).

        A restarted lab plays its story again from the start: the windows an earlier run announced
        that have not ended yet are withdrawn (expired), so they neither pile up nor stay pending."""
        now = self.clock.now()
        planned = {(work.comment, work.start) for work in works}
        existing = set()
        for silence in self.alerts.silences.list():
            key = (silence.comment, silence.starts_at.timestamp())
            if silence.created_by == "lab" and key not in planned and silence.ends_at.timestamp() > now:
                self.alerts.silences.expire(silence.id)
                log.info("lab maintenance window of an earlier run withdrawn: %s (%s)", silence.comment, silence.id,
                         extra={"silence": silence.id, "comment": silence.comment})  # fmt: skip
                continue
            existing.add(key)
        for work in works:
            if (work.comment, work.start) in existing:
                continue
            self.alerts.silences.upsert({
                "matchers": [{"name": "element", "value": work.element, "isRegex": False, "isEqual": True}],
                "startsAt": _rfc3339(work.start), "endsAt": _rfc3339(work.end),
                "createdBy": "lab", "comment": work.comment,
            })
            log.info("lab maintenance window announced", extra={"element": work.element, "comment": work.comment})

    @staticmethod
    def _dlr_url(site: SiteConfig, options: RuntimeOptions, token: str | None) -> str | None:
        """Where Kannel reports deliveries: ``<public URL>/api/v1/sms/dlr?token=...`` (escaped for
        Kannel's dlr-url), or None (no reports asked for) without a token or a reachable URL."""
        kannel = site.contingency.sms.kannel
        if site.contingency.sms.sink != "kannel" or kannel is None or not kannel.delivery_reports:
            return None
        host = options.http_host
        listened = None if is_wildcard(host) else f"http://{f'[{host}]' if ':' in host else host}:{options.http_port}"
        base = site.http.public_url or options.external_url or listened
        if token is None or base is None:
            log.warning("SMS delivery reports are off: Kannel's dlr-url needs %s",
                        "http.write_token" if token is None else "http.public_url (listen is a wildcard)")
            return None
        log.info("Kannel reports SMS deliveries to %s/api/v1/sms/dlr", base)
        return f"{base}/api/v1/sms/dlr?token={kannel_escape(token)}"

    @staticmethod
    def _write_token(site: SiteConfig, options: RuntimeOptions) -> str | None:
        h = site.http
        secret = resolve_secret(h.write_token, h.write_token_env, h.write_token_file, base=options.config_dir)
        if secret is None:
            host = options.http_host  # where vigil listens (--http), not necessarily http.listen
            listen = f"{f'[{host}]' if ':' in host else host}:{options.http_port}"
            log.warning("http.write_token is not set: anyone who reaches %s can create silences", listen)
            return None
        return secret.get_secret_value()

    def _detection_engine(self, site: SiteConfig) -> DetectionEngine:
        """The engine, restored from the data dir after a restart (no new warm-up) when possible."""
        parents = {el.name: el.parent or el.area for el in site.elements if el.parent or el.area}
        fresh = DetectionEngine.from_config(site.detectors, parents=parents)
        if not self.state_path.exists():
            return fresh
        try:
            engine = DetectionEngine.load(self.state_path, parents=parents)
        except ValueError as err:  # StateVersionError included: start a fresh warm-up
            log.warning("detector state not restored, starting a fresh warm-up: %s", err)
            return fresh
        if engine.get_params() != fresh.get_params():
            log.warning("detector settings changed since the state was saved: starting a fresh warm-up")
            return fresh
        log.info("detector state restored: %d series from %s", engine.series_count, self.state_path)
        learnt, now = engine.forecaster.t_last_, self.clock.now()
        last = float(np.nanmax(learnt)) if np.isfinite(learnt).any() else now
        if last > now:  # e.g. the host's clock was set back
            log.warning("detector state is %.0f s ahead of the clock: its series learn nothing new "
                        "until the clock passes %s", last - now, _rfc3339(last))  # fmt: skip
        return engine

    def _trap_listener(self, site: SiteConfig, options: RuntimeOptions) -> TrapListener | None:
        """The trap/inform listener, accepting the site's credentials (v1/v2c communities, v3 users)."""
        cfg = site.traps
        if not cfg.enabled:
            return None
        names = cfg.credentials if cfg.credentials is not None else list(site.snmp.credentials)
        communities: list[str] = []
        users: list[V3User] = []
        for name in names:
            cred = site.snmp.credentials[name]
            # the credential's resolved secrets, through the same code the pollers use
            holder = Element(name=f"traps-{name}", address="udp://127.0.0.1:1", credential=name)
            target = target_for(holder, cred, base=options.config_dir)
            if cred.version == "3":
                users.append(
                    V3User(
                        user=target.user or "", auth_protocol=target.auth_protocol, auth_key=target.auth_key,
                        priv_protocol=target.priv_protocol, priv_key=target.priv_key,
                        engine_ids=tuple(cfg.engine_ids.get(name, ())), name=name,
                    )
                )
            else:
                communities.append(target.community)
        if not communities and not users:
            log.warning("trap listener disabled: no credentials to accept traps with")
            return None
        hosts: dict[str, list[str]] = {}
        for el in site.elements:
            hosts.setdefault(el.host, []).append(el.name)
        host, _, port = cfg.listen.rpartition(":")
        return TrapListener(
            host=host, port=int(port), communities=communities, users=users,
            # a source address names an element only when one element has it
            elements_by_address={h: names[0] for h, names in hosts.items() if len(names) == 1},
            on_trap=self._on_trap, clock=self.clock.now, registry=self.registry,
        )

    def _on_trap(self, trap: Trap) -> None:
        """A trap becomes events at once, without waiting for the next poll."""
        try:
            events = self.trap_rules.update(trap)
        except Exception:
            log.exception("trap from %s could not be turned into events", trap.source)
            return
        if events:
            task = asyncio.get_running_loop().create_task(self.handle_events(events))
            self._inflight_events.add(task)
            task.add_done_callback(self._inflight_events.discard)

    def save_state(self) -> None:
        """Save the detector and link state (a scheduler thread every 5 min, and at shutdown).

        One save at a time: the shutdown's save waits for a scheduled one still running, so the
        files never share a temporary name and the last snapshot written is the newest."""
        with _SAVE_LOCK:
            self._save_state()

    def _save_state(self) -> None:
        try:
            self.detector.save(self.state_path)
        except OSError as err:
            log.error("could not save detector state to %s: %s", self.state_path, err)
        except Exception:  # the link state is saved all the same
            log.exception("could not save detector state to %s", self.state_path)
        tmp = self.link_state_path.with_name(self.link_state_path.name + ".tmp")  # write, then rename
        try:
            tmp.write_text(json.dumps(self.trap_rules.state_dict()), encoding="utf-8")
            os.replace(tmp, self.link_state_path)
        except Exception:
            log.exception("could not save link state to %s", self.link_state_path)
            with contextlib.suppress(OSError):
                tmp.unlink()

    def save_clock(self) -> None:
        """Keep a simulated clock's reading in the data dir (every few seconds, and at shutdown), so
        that a restart continues from it instead of going back to wall time."""
        if self.clock_path is None:
            return
        try:
            save_time(self.clock_path, self.clock.now())
        except OSError as err:
            log.error("could not save the clock to %s: %s", self.clock_path, err)

    def _load_link_state(self) -> None:
        """Which ports were seen up, down or shut before a restart (so a polled "down" counts at once)."""
        if not self.link_state_path.exists():
            return
        try:
            state = json.loads(self.link_state_path.read_text(encoding="utf-8"))
            count = self.trap_rules.load_state_dict(state)
        except (OSError, ValueError) as err:  # JSONDecodeError is a ValueError
            log.warning("link state not restored from %s, ports count once seen up again: %s",
                        self.link_state_path, err)  # fmt: skip
            return
        log.info("link state restored: %d interfaces from %s", count, self.link_state_path)

    # -- data path ------------------------------------------------------------------------
    def _on_samples(self, samples: list[Sample]) -> None:
        try:
            self.queue.put_nowait(samples)
        except asyncio.QueueFull:
            log.error("sample queue full: dropping %d samples", len(samples))

    async def _process(self) -> None:
        while True:
            samples = await self.queue.get()
            events: list[Event] = []
            # each consumer on its own: one failing on a bad batch never costs the others' events
            for what, consume in (
                ("reachability", self.reachability.update),
                ("detectors", self.detector.update),
                ("link state", self.trap_rules.observe),
            ):
                try:
                    events += consume(samples)
                except Exception:  # one bad batch must not stop the data path
                    log.exception("%s: processing %d samples failed", what, len(samples))
            try:
                self._events_total.set(self.detector.series_count)
                if events:
                    await self.handle_events(events)
            except Exception:
                log.exception("processing %d samples failed", len(samples))

    async def handle_events(self, events: Sequence[Event]) -> None:
        """Hand state changes to both consumers; one failing never stops the other."""
        for event in events:
            log.info(
                "event %s %s on %s %s: %s", event.state, event.name, event.element,
                event.label("ifName"), event.summary,
            )
        try:
            await self.alerts.ingest(events)
        except Exception:
            log.exception("alert pipeline failed on %d events", len(events))
        try:
            # in a worker thread: an incident above 100,000 customers snapshots and queues them all
            # (about half a second per 10,000), which must not stall polls and the web app
            await asyncio.to_thread(self.contingency.handle, events)
        except Exception:
            log.exception("contingency failed on %d events", len(events))

    @contextlib.contextmanager
    def _tracked(self) -> Iterator[None]:
        """A scheduled job under way, so that shutdown lets it finish instead of cancelling it."""
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _poll_job(self, element: str) -> None:
        with self._tracked():
            await self.poller.poll(element)

    async def _expire_traps(self) -> None:
        """Trap-raised alerts whose hold ran out resolve (a job of its own: never behind a send)."""
        with self._tracked():
            expired = self.trap_rules.tick(self.clock.now())
            if expired:
                await self.handle_events(expired)

    async def _dispatch_alerts(self) -> None:
        """Start the due notifications; the sends run as tasks of their own, not awaited here."""
        with self._tracked():
            try:
                await self.alerts.dispatch()
            except Exception:
                log.exception("alert delivery failed")

    async def _contingency_tick(self) -> None:
        with self._tracked():
            try:
                # in a worker thread: a real SMS gateway (Kannel) answers over HTTP, and hundreds of
                # texts must not stall polls and the web app; the manager serialises itself with a lock
                await asyncio.to_thread(self.contingency.tick)
            except Exception:
                log.exception("contingency tick failed")

    def status(self) -> dict[str, Any]:
        """What /healthz and the agent page show about the run."""
        return {
            "site": self.site.site,
            "sim_time": self.clock.now(),
            "speedup": self.clock.speedup,
            "elements": len(self.targets),
            "series": self.detector.series_count,
            "open_incidents": self.contingency.open_incidents(),  # a COUNT, not the list of every incident
            "uptime_s": round(time.monotonic() - self.started_wall, 1),
            "lab": self.lab is not None,
            "scenario": [
                {"element": f.element, "ifIndex": f.if_index, "kind": str(f.kind), "start": f.start, "end": f.end,
                 "note": f.note}
                for f in (getattr(self.lab, "scenario", None) or [])
            ],
        }

    # -- lifecycle ------------------------------------------------------------------------
    def _schedule(self) -> AsyncIOScheduler:
        sched = AsyncIOScheduler()
        d = self.site.snmp.defaults
        speedup = self.clock.speedup
        for i, el in enumerate(self.site.elements):
            interval = (el.interval or d.interval) / speedup
            # spread first polls over the interval so elements do not poll in lock-step
            offset = interval * (i / max(1, len(self.site.elements)))
            sched.add_job(
                self._poll_job, "interval", args=[el.name], seconds=interval, id=f"poll:{el.name}",
                # 2: an overlapping poll reaches the Poller, which counts the overrun and skips it
                max_instances=2, coalesce=True, misfire_grace_time=None,
                next_run_time=_in(offset + 0.2),
            )
        # each its own job: a slow SMS gateway or trap burst never delays the alerts, and the
        # alert job only starts sends (a hanging receiver never delays the next dispatch)
        for job, name in ((self._expire_traps, "expire-traps"), (self._dispatch_alerts, "deliver"),
                          (self._contingency_tick, "contingency")):  # fmt: skip
            sched.add_job(job, "interval", seconds=0.5, id=name, max_instances=1, coalesce=True)
        sched.add_job(self.save_state, "interval", seconds=300, id="save-state", max_instances=1, coalesce=True)
        if self.clock_path is not None:
            sched.add_job(self.save_clock, "interval", seconds=5, id="save-clock", max_instances=1, coalesce=True)
        return sched

    async def run(self) -> None:
        """Start everything, serve until the duration passes or a signal arrives, stop cleanly."""
        # the web app's address first: a taken port stops the start before anything is announced
        sockets = listen_sockets(self.options.http_host, self.options.http_port)
        self._catch_signals()
        try:
            if self.lab is not None:
                await self.lab.start()
            if self.traps is not None:
                try:
                    await self.traps.start()
                    log.info("listening for SNMP traps and informs on udp://%s:%d", *self.traps.address)
                except OSError as err:  # a taken port costs the traps, not the service
                    log.error("trap listener not started on %s: %s", self.site.traps.listen, err)
                    self.traps = None
        except BaseException:
            for sock in sockets:
                sock.close()
            self._release_signals()
            raise
        processor = asyncio.create_task(self._process(), name="vigil-process")
        self.scheduler = self._schedule()
        self.scheduler.start()
        config = uvicorn.Config(
            self.app, host=self.options.http_host, port=self.options.http_port,
            log_level="warning", lifespan="off",
        )
        server = _Server(config)
        server_task = asyncio.create_task(server.serve(sockets=sockets), name="vigil-http")
        for line in self.options.banner:
            self.options.echo(line)
        stop = asyncio.create_task(self._stop.wait(), name="vigil-stop")
        try:
            await asyncio.wait({server_task, stop}, timeout=self.options.duration,
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            stop.cancel()
            await self.shutdown(server, server_task, processor)
            self._release_signals()

    def _catch_signals(self) -> None:
        """SIGTERM/SIGINT start the graceful stop; a second one hurries it (no more waiting)."""
        loop = asyncio.get_running_loop()
        for sig in _STOP_SIGNALS:
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
                return

    def _release_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in _STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: int) -> None:
        self._signals.append(sig)
        name = signal.Signals(sig).name
        if len(self._signals) == 1:
            log.info("%s: stopping (notifications in flight get %.0f s, then are kept for the restart)",
                     name, SEND_GRACE)  # fmt: skip
        else:
            log.warning("%s again: stopping without waiting", name)
        self._stop.set()

    @property
    def _hurry(self) -> bool:
        return len(self._signals) > 1

    async def shutdown(self, server: uvicorn.Server, server_task: asyncio.Task, processor: asyncio.Task) -> None:
        if self.scheduler is not None:
            self.scheduler.pause()
            if self._inflight:  # polls and ticks under way finish (bounded by their timeouts)
                await asyncio.wait(set(self._inflight), timeout=10)
            self.scheduler.shutdown(wait=False)
        server.should_exit = True
        server.force_exit = self._hurry
        try:
            await asyncio.wait_for(server_task, timeout=5)
        except (Exception, SystemExit) as err:  # noqa: BLE001 - the stop goes on regardless
            log.warning("web server did not stop cleanly: %r", err)
        processor.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await processor
        # a last round: expired trap alerts resolve, due notifications and texts go out
        for last in (self._expire_traps, self._dispatch_alerts, self._contingency_tick):
            try:
                await last()
            except Exception:  # the stop goes on: state is saved all the same
                log.exception("last %s at the stop failed", last.__name__.strip("_").replace("_", " "))
        # sends still in flight after the grace are cancelled: their rows go back to pending and
        # are sent after the restart (at-least-once), never left 'sending' (that would be lost)
        kept = await self.alerts.drain(timeout=0 if self._hurry else SEND_GRACE)
        if kept:
            log.warning("%d notification(s) still in flight at the stop: kept in the outbox, sent after the restart",
                        kept)  # fmt: skip
        self.save_state()
        self.save_clock()  # after every other write: no saved time is later than the clock
        if self.traps is not None:
            with contextlib.suppress(Exception):
                await self.traps.stop()
        if self.lab is not None:
            with contextlib.suppress(Exception):
                await self.lab.stop()
        self.client.close()
        self.engine.dispose()


def _in(seconds: float):  # noqa: ANN202 - datetime
    from datetime import datetime, timedelta

    return datetime.now(UTC) + timedelta(seconds=seconds)


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
