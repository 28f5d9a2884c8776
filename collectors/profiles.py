"""Device profiles: which SNMP scalars and table columns to poll, chosen by sysObjectID prefix.

A profile is a YAML file (shipped ones in ``collectors/profiles/``; users add their own with
``profile_dirs``) validated by pydantic with ``extra="forbid"``; errors name the file and the
field path. :class:`ProfileCollector` polls the profiles that match an element's sysObjectID:
one GET for sysUpTime, ifNumber, ifTableLastChange and the profiles' scalars, one multi-column
GETBULK walk for every polled column of every matched table, and a second walk of the lookup
columns (labels such as ifName, slow-moving numbers such as ifHighSpeed) only when they are
stale: on the first poll, every ``label_refresh`` seconds, when sysUpTime goes back, when
ifNumber or ifTableLastChange changes, or when an unknown row appears. A table the device does
not have (no rows) is left out of the polls until the next label refresh, so generic profiles of
standard MIBs (HOST-RESOURCES, ENTITY-SENSOR, ADSL) cost nothing on devices without them.

Column types: ``counter32``/``counter64`` (COUNTER samples, plus a RATE sample named by
``rate``), ``gauge``/``integer`` (GAUGE samples) and ``string-label`` (a cached label).

A column with ``fallback_for: X`` stands in for column ``X`` of the same table on the rows where the
device has no ``X`` (snmp_exporter/LibreNMS-style: IF-MIB's 32-bit ``ifInOctets`` where there is no
64-bit ``ifHCInOctets``, as on any SNMPv1 agent, which cannot carry Counter64, or a device without
ifXTable): its samples (value, rate, utilization) are emitted only on those rows. A polled fallback
column is walked only while some row lacks ``X`` (looked at every poll, and again from scratch at
every label refresh), so devices that have ``X`` everywhere pay nothing for it. A table's ``speed``
may list several columns: the first non-zero one gives a row's speed (``ifHighSpeed``, else ``ifSpeed``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Self

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from collectors.counters import RateCalculator
from collectors.sample import Sample, SampleKind
from collectors.snmp import SnmpClient, SnmpProtocolError, Target

__all__ = [
    "BUILTIN_PROFILE_DIR",
    "IF_NUMBER",
    "IF_TABLE_LAST_CHANGE",
    "SYS_OBJECT_ID",
    "SYS_UPTIME",
    "Column",
    "ColumnType",
    "Profile",
    "ProfileCollector",
    "ProfileError",
    "Row",
    "Scalar",
    "Table",
    "load_profile",
    "load_profiles",
    "select_profiles",
]

log = logging.getLogger(__name__)

BUILTIN_PROFILE_DIR = Path(__file__).with_name("profiles")
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
IF_NUMBER = "1.3.6.1.2.1.2.1.0"
IF_TABLE_LAST_CHANGE = "1.3.6.1.2.1.31.1.5.0"
_SPEED_MARGIN = 1.5  # above 1.5x the interface speed a rate is a glitch (dropped); up to it, timing: capped


def _numeric_oid(value: str) -> str:
    """Accept ``1.3.6.1...`` (a leading dot is dropped); reject names and empty parts."""
    text = value.strip().lstrip(".")
    parts = text.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a numeric OID: {value!r}")
    return ".".join(str(int(p)) for p in parts)


NumericOid = Annotated[str, AfterValidator(_numeric_oid)]
Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class ColumnType(StrEnum):
    """What a column's values are."""

    COUNTER32 = "counter32"
    COUNTER64 = "counter64"
    GAUGE = "gauge"
    INTEGER = "integer"
    STRING_LABEL = "string-label"

    @property
    def width(self) -> int:
        """Counter width in bits; 0 for non-counters."""
        return _WIDTHS.get(self, 0)


_WIDTHS = {ColumnType.COUNTER32: 32, ColumnType.COUNTER64: 64}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scalar(_Model):
    """One scalar polled every time, e.g. ``hrMemorySize``."""

    name: Name
    oid: NumericOid
    type: ColumnType
    scale: float | None = None  # multiply the raw value (0.1 for tenths of dB)
    unit: str = ""
    rate: Name | None = None  # counters: name of the per-second RATE sample
    rate_scale: float = 1.0  # multiply the rate (8: octets -> bits)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.type is ColumnType.STRING_LABEL:
            raise ValueError("a scalar cannot be a string-label")
        if self.rate is not None and not self.type.width:
            raise ValueError("'rate' needs a counter32 or counter64 type")
        return self


class Column(_Model):
    """One column of a table: a metric, or a label / lookup cached between refreshes."""

    name: Name
    oid: NumericOid
    type: ColumnType
    lookup: bool = False  # cached with the labels (string-label columns always are)
    export: bool = True  # numeric columns: emit a sample of the value
    scale: float | None = None
    unit: str = ""
    rate: Name | None = None
    rate_scale: float = 1.0
    utilization: Name | None = None  # counters: rate * rate_scale / table speed, 0..1
    sensor_exponent: Name | None = None  # lookup with an ENTITY-SENSOR SI exponent (units = 9)
    sensor_precision: Name | None = None  # lookup with the number of decimal places
    ignore: tuple[int, ...] = ()  # sentinel values meaning "not available"
    # gauges: also emit the (scaled) value under a detectors' series name, e.g. cpu_utilization
    # (0..1) from a percent column; only on rows whose labels match every ``series_match`` regex
    series: Name | None = None
    series_scale: float = 1.0
    series_match: dict[Name, str] = Field(default_factory=dict)
    # stands in for that column of the table on the rows where the device has no value for it
    fallback_for: Name | None = None

    @property
    def cached(self) -> bool:
        """Walked with the lookups rather than every poll."""
        return self.lookup or self.type is ColumnType.STRING_LABEL

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.type is ColumnType.STRING_LABEL and (self.rate or self.utilization or self.scale):
            raise ValueError("a string-label column has no rate, utilization or scale")
        if (self.rate or self.utilization) and not self.type.width:
            raise ValueError("'rate' and 'utilization' need a counter32 or counter64 type")
        if self.lookup and self.type.width:
            raise ValueError("a counter cannot be a lookup: it must be read every poll")
        if self.utilization and not self.rate:
            raise ValueError("'utilization' needs 'rate'")
        if self.series and (self.type.width or self.type is ColumnType.STRING_LABEL):
            raise ValueError("'series' is for gauge and integer columns")
        for label, pattern in self.series_match.items():
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"series_match.{label}: invalid regex: {err}") from err
        return self


class Speed(_Model):
    """The column giving a row's speed, and its unit in bits per second."""

    column: Name
    scale: float = 1.0


def _speeds(value: object) -> object:
    """``speed`` is one column or a list of them, in order of preference."""
    return (value,) if isinstance(value, dict | Speed) else value


class Filter(_Model):
    """Keep only the rows whose lookup ``column`` is one of ``values``."""

    column: Name
    values: tuple[int | str, ...] = Field(min_length=1)


class Table(_Model):
    """A conceptual table: index label names, columns, labels of its samples."""

    name: Name
    index: tuple[Name, ...] = ("index",)
    columns: tuple[Column, ...] = Field(min_length=1)
    labels: tuple[Name, ...] = ()  # labels of raw samples: index names and label columns
    rate_labels: tuple[Name, ...] | None = None  # labels of RATE samples (default: labels)
    # bounds counter rates (impossible rate) and gives utilization; a list: the first non-zero one
    speed: Annotated[tuple[Speed, ...], BeforeValidator(_speeds)] = ()
    discontinuity: NumericOid | None = None  # per-row counter discontinuity time, read each poll
    filter: tuple[Filter, ...] = ()  # keep a row when any filter matches (no filter: every row)

    @model_validator(mode="after")
    def _check(self) -> Self:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError("column names must be unique within a table")
        known = set(self.index) | set(names)
        cached = {c.name for c in self.columns if c.cached}
        for label in (*self.labels, *(self.rate_labels or ())):
            if label not in known:
                raise ValueError(f"label {label!r} is neither an index name nor a column")
            if label not in self.index and label not in cached:
                # labels are computed once per label refresh, so they must come from lookups
                raise ValueError(f"label {label!r} must be an index name or a lookup column")
        for column in self.columns:
            for ref in (column.sensor_exponent, column.sensor_precision):
                if ref is not None and ref not in cached:
                    raise ValueError(f"{column.name}: {ref!r} is not a lookup column")
            if column.utilization and not self.speed:
                raise ValueError(f"{column.name}: 'utilization' needs the table's 'speed'")
            if column.fallback_for is not None:
                preferred = next((c for c in self.columns if c.name == column.fallback_for), None)
                if preferred is None or preferred is column:
                    raise ValueError(f"{column.name}: fallback_for {column.fallback_for!r} is not another column")
                if preferred.fallback_for is not None:
                    raise ValueError(f"{column.name}: {preferred.name!r} is itself a fallback")
                if preferred.cached != column.cached:
                    raise ValueError(f"{column.name}: a fallback is read like its column (polled or lookup)")
        for speed in self.speed:
            if speed.column not in names:
                raise ValueError(f"speed column {speed.column!r} is not a column")
        for rule in self.filter:
            if rule.column not in cached:
                raise ValueError(f"filter column {rule.column!r} is not a lookup column")
        return self

    @cached_property
    def polled(self) -> tuple[Column, ...]:
        """Columns read every poll."""
        return tuple(c for c in self.columns if not c.cached)

    @cached_property
    def exported_main(self) -> tuple[Column, ...]:
        """Exported columns but the polled fallbacks (for polls that did not walk them)."""
        return tuple(c for c in self.exported if c.cached or c.fallback_for is None)

    @cached_property
    def polled_main(self) -> tuple[Column, ...]:
        """Polled columns walked every poll (all but the fallbacks)."""
        return tuple(c for c in self.polled if c.fallback_for is None)

    @cached_property
    def polled_fallbacks(self) -> tuple[tuple[Column, Column], ...]:
        """(preferred column, its fallback) of the polled fallbacks, walked where needed."""
        by_name = {c.name: c for c in self.columns}
        return tuple((by_name[c.fallback_for], c) for c in self.polled if c.fallback_for is not None)

    @cached_property
    def lookups(self) -> tuple[Column, ...]:
        """Columns read on a label refresh."""
        return tuple(c for c in self.columns if c.cached)

    @cached_property
    def exported(self) -> tuple[Column, ...]:
        """Numeric columns that become samples."""
        return tuple(c for c in self.columns if c.type is not ColumnType.STRING_LABEL and c.export)


class Profile(_Model):
    """What to poll on the devices whose sysObjectID starts with one of ``match``."""

    name: Name
    description: str = ""
    match: tuple[NumericOid, ...] = ()  # empty: every device (a generic profile)
    scalars: tuple[Scalar, ...] = ()
    tables: tuple[Table, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Self:
        names = [t.name for t in self.tables]
        if len(set(names)) != len(names):
            raise ValueError("table names must be unique within a profile")
        if not self.scalars and not self.tables:
            raise ValueError("a profile needs scalars or tables")
        return self

    def matches(self, sys_object_id: str | None) -> bool:
        """True for a generic profile, or when ``sys_object_id`` starts with a prefix."""
        if not self.match:
            return True
        if not sys_object_id:
            return False
        oid = sys_object_id.lstrip(".")
        return any(oid == prefix or oid.startswith(prefix + ".") for prefix in self.match)


class ProfileError(ValueError):
    """A profile file could not be read or is invalid; the message names file and field."""

    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = list(problems)


def _field_path(loc: Iterable[object]) -> str:
    return ".".join(str(part) for part in loc) or "(top)"


def load_profile(path: Path) -> Profile:
    """Read and validate one profile YAML file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ProfileError(path, [f"cannot read: {err}"]) from err
    try:
        return Profile.model_validate(data)
    except ValidationError as err:
        problems = [f"{_field_path(e['loc'])}: {e['msg']}" for e in err.errors()]
        raise ProfileError(path, problems) from err


def load_profiles(profile_dirs: Sequence[Path | str] = (), *, builtin: bool = True) -> list[Profile]:
    """The shipped profiles and those of ``profile_dirs``; a later one replaces a same-named one."""
    dirs = [BUILTIN_PROFILE_DIR] if builtin else []
    dirs.extend(Path(d) for d in profile_dirs)
    profiles: dict[str, Profile] = {}
    for directory in dirs:
        if not directory.is_dir():
            raise ProfileError(directory, ["not a directory"])
        for path in sorted((*directory.glob("*.yaml"), *directory.glob("*.yml"))):
            profile = load_profile(path)
            profiles[profile.name] = profile
    return list(profiles.values())


def select_profiles(profiles: Iterable[Profile], sys_object_id: str | None) -> list[Profile]:
    """The profiles that apply to a device with ``sys_object_id``."""
    return [p for p in profiles if p.matches(sys_object_id)]


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a polled table as last seen: index labels, lookups and polled values."""

    table: str
    index: str
    values: dict[str, object]  # column name -> value (lookups from the cache), None if absent


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _index_labels(names: tuple[str, ...], suffix: str) -> dict[str, str]:
    """Split an index suffix over the index names; the last name takes what is left."""
    if len(names) == 1:
        return {names[0]: suffix}
    parts = suffix.split(".")
    head = len(names) - 1
    if len(parts) <= head:
        return {names[0]: suffix}
    labels = dict(zip(names[:head], parts[:head], strict=True))
    labels[names[-1]] = ".".join(parts[head:])
    return labels


@dataclass(slots=True)
class _Cache:
    """Lookup columns of one table: column name -> {index suffix -> value}."""

    values: dict[str, dict[str, object]]
    rows: set[str]  # every index known at the last refresh (lookup or polled)


_EMPTY_CACHE = _Cache({}, set())


class ProfileCollector:
    """Poll one target with the profiles matching its sysObjectID (or all, ``select=False``)."""

    def __init__(
        self,
        client: SnmpClient,
        target: Target,
        profiles: Sequence[Profile],
        clock: Callable[[], float] = time.time,
        label_refresh: float = 3600.0,
        *,
        select: bool = True,
        speed_margin: float = _SPEED_MARGIN,
    ) -> None:
        self.client = client
        self.target = target
        self.profiles = list(profiles)
        self.clock = clock
        self.label_refresh = label_refresh
        self.select = select
        self.speed_margin = speed_margin
        self.sys_object_id: str | None = None
        self.active: list[Profile] | None = None if select else list(profiles)
        self.rows: dict[str, list[Row]] = {}
        self.varbinds = 0  # varbinds received by the last collect()
        self.lookup_refreshes = 0
        self._rates = RateCalculator()
        self._cache: dict[str, _Cache] = {}
        self._row_memo: dict[str, tuple[_Cache, dict[str, tuple]]] = {}
        self._absent: set[str] = set()  # tables the device did not have: re-probed at refresh
        self._lookups_at: float | None = None
        self._last_uptime: int | None = None
        self._last_if_number: object = None
        self._last_table_change: object = None
        self._fallback: dict[str, bool] = {}  # table -> its polled fallback columns are walked
        self._polled_at: float | None = None
        self._elapsed = 0.0  # seconds since the previous poll
        self._wrap_warned: set[tuple[str, str, str]] = set()

    # -- the poll ------------------------------------------------------------------------

    async def collect(self) -> list[Sample]:
        """Poll the target once: sysUpTime, scalars, tables; rates from the 2nd poll on."""
        self.varbinds = 0
        selecting = self.active is None
        system = [SYS_UPTIME, IF_NUMBER, IF_TABLE_LAST_CHANGE]
        if selecting:
            system.append(SYS_OBJECT_ID)
        scalars = self._scalars()
        values = await self._get([*system, *(s.oid for s in scalars)])
        uptime = _int(values[SYS_UPTIME])
        if uptime is None:
            raise SnmpProtocolError("agent has no sysUpTime.0", self.target)
        reset = self._last_uptime is not None and uptime < self._last_uptime
        changed = reset or (
            self._last_uptime is not None
            and (
                values[IF_NUMBER] != self._last_if_number
                or values[IF_TABLE_LAST_CHANGE] != self._last_table_change
            )
        )
        self._last_uptime = uptime
        self._last_if_number = values[IF_NUMBER]
        self._last_table_change = values[IF_TABLE_LAST_CHANGE]
        if reset and self.select and not selecting:
            # The device restarted: it may have been replaced or upgraded, so read sysObjectID.
            values.update(await self._get([SYS_OBJECT_ID]))
            selecting = True
        if selecting:
            self.sys_object_id = _text(values[SYS_OBJECT_ID]) or None
            self.active = select_profiles(self.profiles, self.sys_object_id)
            log.info(
                "%s: sysObjectID %s, profiles %s",
                self.target.element,
                self.sys_object_id,
                ", ".join(p.name for p in self.active) or "none",
            )
            asked = {s.oid for s in scalars}
            scalars = self._scalars()
            missing = [s.oid for s in scalars if s.oid not in asked]
            if missing:
                values.update(await self._get(missing))

        due = (
            self._lookups_at is None
            or changed
            or self.clock() - self._lookups_at >= self.label_refresh
        )
        if due:
            self._absent.clear()  # probe the tables the device did not have, once per refresh
            self._fallback.clear()  # and whether the fallback columns are still needed
        every = self._tables()
        tables = [t for t in every if t.name not in self._absent]
        polled = await self._walk_polled(tables)
        await self._walk_fallbacks(tables, polled)
        now = self.clock()
        self._elapsed = now - self._polled_at if self._polled_at is not None else 0.0
        self._polled_at = now
        if due or self._new_rows(tables, polled):
            await self._refresh_lookups(every, polled, now)

        samples = [Sample(self.target.element, "sysUpTime", (), uptime, now, SampleKind.GAUGE)]
        for scalar in scalars:
            samples.extend(self._scalar_samples(scalar, values.get(scalar.oid), uptime, now))
        rows: dict[str, list[Row]] = {}
        keep: set[tuple[str, str, str]] = {("scalar", "", s.name) for s in scalars}
        for table in tables:
            rows[table.name] = self._table_samples(table, polled, uptime, now, samples, keep)
            if table.polled and not any(polled.get(c.oid) for c in table.polled):
                # Absent on this device: skip its columns until the next label refresh, so a
                # generic profile costs nothing on devices without the MIB.
                self._absent.add(table.name)
        self._rates.retain(keep)  # type: ignore[arg-type]
        self.rows = rows
        return samples

    async def _get(self, oids: list[str]) -> dict[str, object]:
        values = await self.client.get(self.target, oids)
        self.varbinds += len(values)
        return values

    def _scalars(self) -> list[Scalar]:
        return [s for p in self.active or () for s in p.scalars]

    def _tables(self) -> list[Table]:
        return [t for p in self.active or () for t in p.tables]

    async def _walk_polled(self, tables: list[Table]) -> dict[str, dict[str, object]]:
        """One multi-column walk of every polled column (and discontinuity marker)."""
        oids: list[str] = []
        for table in tables:
            oids.extend(c.oid for c in table.polled_main)
            if self._fallback.get(table.name):
                oids.extend(c.oid for _, c in table.polled_fallbacks)
            if table.discontinuity:
                oids.append(table.discontinuity)
        oids = list(dict.fromkeys(oids))
        if not oids:
            return {}
        known = [len(c.rows) for c in self._cache.values()]
        # Known row count + 1: one GETBULK round trip ends every column of a small table.
        rows = min(max(known) + 1, self.target.max_repetitions) if known and max(known) else None
        result = await self.client.walk_table(self.target, oids, max_repetitions=rows)
        self.varbinds += sum(len(column) for column in result.values())
        return result

    async def _walk_fallbacks(self, tables: list[Table], polled: dict[str, dict[str, object]]) -> None:
        """Walk the fallback columns (e.g. ifInOctets) of the tables where a row now lacks the
        preferred column (ifHCInOctets) and they were not walked; they are then walked every poll
        until the next label refresh looks again."""
        oids: list[str] = []
        for table in tables:
            if not table.polled_fallbacks or self._fallback.get(table.name):
                continue
            rows = max((len(polled.get(c.oid, ())) for c in table.polled_main), default=0)
            needed = any(len(polled.get(preferred.oid, ())) < rows for preferred, _ in table.polled_fallbacks)
            self._fallback[table.name] = needed
            if needed:
                oids.extend(c.oid for _, c in table.polled_fallbacks)
                log.info("%s: table %s: rows without %s, reading %s instead there", self.target.element,
                         table.name, ", ".join(p.name for p, _ in table.polled_fallbacks),
                         ", ".join(c.name for _, c in table.polled_fallbacks))
        oids = [oid for oid in dict.fromkeys(oids) if oid not in polled]
        if not oids:
            return
        result = await self.client.walk_table(self.target, oids)
        self.varbinds += sum(len(column) for column in result.values())
        polled.update(result)

    def _new_rows(self, tables: list[Table], polled: dict[str, dict[str, object]]) -> bool:
        """True when a polled column has a row whose labels are not cached."""
        for table in tables:
            if not table.lookups:
                continue
            cache = self._cache.get(table.name)
            if cache is None:
                return True
            for column in table.polled:
                if any(suffix not in cache.rows for suffix in polled.get(column.oid, {})):
                    return True
        return False

    async def _refresh_lookups(
        self, tables: list[Table], polled: dict[str, dict[str, object]], now: float
    ) -> None:
        """Walk every lookup column of every table again, in one multi-column walk."""
        oids = list(dict.fromkeys(c.oid for t in tables for c in t.lookups))
        result = await self.client.walk_table(self.target, oids) if oids else {}
        self.varbinds += sum(len(column) for column in result.values())
        self._cache = {}
        for table in tables:
            values = {c.name: result.get(c.oid, {}) for c in table.lookups}
            rows = {s for column in values.values() for s in column}
            rows.update(s for c in table.polled for s in polled.get(c.oid, {}))
            self._cache[table.name] = _Cache(values, rows)
        self._lookups_at = now
        self.lookup_refreshes += 1
        log.debug("%s: lookups refreshed (%d columns)", self.target.element, len(oids))

    # -- samples -------------------------------------------------------------------------

    def _scalar_samples(
        self, scalar: Scalar, raw: object, uptime: int, now: float
    ) -> list[Sample]:
        value = _int(raw)
        if value is None:
            return []
        element = self.target.element
        kind = SampleKind.COUNTER if scalar.type.width else SampleKind.GAUGE
        shown: float = value * scalar.scale if scalar.scale is not None else value
        samples = [Sample(element, scalar.name, (), shown, now, kind)]
        if scalar.rate is not None:
            rate = self._rates.update(
                ("scalar", "", scalar.name), value, now, width=scalar.type.width, uptime=uptime
            )
            if rate is not None:
                samples.append(
                    Sample(element, scalar.rate, (), rate * scalar.rate_scale, now, SampleKind.RATE)
                )
        return samples

    def _table_samples(
        self,
        table: Table,
        polled: dict[str, dict[str, object]],
        uptime: int,
        now: float,
        samples: list[Sample],
        keep: set[tuple[str, str, str]],
    ) -> list[Row]:
        element = self.target.element
        cache = self._cache.get(table.name, _EMPTY_CACHE)
        # labels and filter verdicts depend on lookups only: computed once per label refresh
        memo = self._row_memo.get(table.name)
        if memo is None or memo[0] is not cache:
            memo = (cache, {})
            self._row_memo[table.name] = memo
        row_memo = memo[1]
        fallbacks = self._fallback.get(table.name, False)
        columns = {c.name: polled.get(c.oid, {}) for c in (table.polled if fallbacks else table.polled_main)}
        if table.polled:
            suffixes = {s for column in columns.values() for s in column}
        else:
            suffixes = {s for column in cache.values.values() for s in column}
        discontinuity = polled.get(table.discontinuity, {}) if table.discontinuity else {}
        rows: list[Row] = []
        for suffix in sorted(suffixes, key=_suffix_key):
            values: dict[str, object] = {
                c.name: cache.values.get(c.name, {}).get(suffix) for c in table.lookups
            }
            values.update({name: column.get(suffix) for name, column in columns.items()})
            memo_row = row_memo.get(suffix)
            if memo_row is None:
                memo_row = row_memo[suffix] = self._row_labels(table, suffix, values)
            keep_row, names, labels, rate_labels = memo_row
            if not keep_row:
                continue
            rows.append(Row(table.name, suffix, values))
            speed_bps = 0.0
            for speed in table.speed:  # the first non-zero one: ifHighSpeed, else ifSpeed
                raw_speed = _int(values.get(speed.column))
                if raw_speed:
                    speed_bps = raw_speed * speed.scale
                    break
            marker = _int(discontinuity.get(suffix))
            for column in table.exported if fallbacks else table.exported_main:
                value = _int(values[column.name])
                if value is None or value in column.ignore:
                    continue
                if column.fallback_for is not None and values.get(column.fallback_for) is not None:
                    continue  # the row has the preferred column (ifHCInOctets): its samples only
                if column.type.width:
                    samples.append(Sample(element, column.name, labels, value, now, SampleKind.COUNTER))
                    key = (table.name, suffix, column.name)
                    keep.add(key)
                    self._rate_samples(
                        column, key, value, speed_bps, marker, uptime, now, rate_labels, samples
                    )
                    continue
                shown = self._gauge_value(column, value, values)
                samples.append(Sample(element, column.name, labels, shown, now, SampleKind.GAUGE))
                if column.series is not None and all(
                    re.search(pattern, names.get(label, "")) for label, pattern in column.series_match.items()
                ):
                    samples.append(
                        Sample(element, column.series, rate_labels, shown * column.series_scale, now, SampleKind.GAUGE)
                    )
        return rows

    @staticmethod
    def _row_labels(
        table: Table, suffix: str, values: dict[str, object]
    ) -> tuple[bool, dict[str, str], tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
        """Whether a row passes the table's filter, and its label names and label tuples."""
        if table.filter and not any(
            _text(values.get(f.column)).strip() in {str(v) for v in f.values} for f in table.filter
        ):
            return False, {}, (), ()
        names = _index_labels(table.index, suffix)
        names.update({c.name: _text(values[c.name]) for c in table.columns if c.name in table.labels})
        labels = tuple(sorted((k, names.get(k, "")) for k in table.labels))
        rate_names = table.labels if table.rate_labels is None else table.rate_labels
        rate_labels = tuple(sorted((k, names.get(k, _text(values.get(k)))) for k in rate_names))
        return True, names, labels, rate_labels

    def _rate_samples(
        self,
        column: Column,
        key: tuple[str, str, str],
        value: int,
        speed_bps: float,
        marker: int | None,
        uptime: int,
        now: float,
        labels: tuple[tuple[str, str], ...],
        samples: list[Sample],
    ) -> None:
        bounded = column.utilization is not None and speed_bps > 0
        max_rate = speed_bps / column.rate_scale * self.speed_margin if bounded else None
        if bounded and column.type.width == 32 and speed_bps / column.rate_scale * self._elapsed >= 1 << 32:
            self._warn_multiple_wraps(column, key, speed_bps, labels)
        rate = self._rates.update(
            key,
            value,
            now,
            width=column.type.width,
            uptime=uptime,
            max_rate=max_rate,
            discontinuity=marker,
        )
        if rate is None or column.rate is None:
            return
        element = self.target.element
        scaled = rate * column.rate_scale
        if bounded:
            # Between the speed and speed_margin x the speed, the rate is a full link measured
            # over an interval the poll's timing shortened (a reply read late; a stalled loop
            # under a sped-up clock): no interface carries more than its speed.
            scaled = min(scaled, speed_bps)
        samples.append(Sample(element, column.rate, labels, scaled, now, SampleKind.RATE))
        if column.utilization is not None and speed_bps > 0:
            samples.append(
                Sample(element, column.utilization, labels, scaled / speed_bps, now, SampleKind.RATE)
            )

    def _warn_multiple_wraps(
        self, column: Column, key: tuple[str, str, str], speed_bps: float, labels: tuple[tuple[str, str], ...]
    ) -> None:
        """Say once per counter that a 32-bit counter can wrap more than once between two polls.

        Two wraps within one interval look exactly like one (or none): at ``speed_bps`` the counter
        can pass 2**32 in ``2**32 * rate_scale / speed_bps`` seconds, so with polls further apart a
        rate above ``2**32 * rate_scale / interval`` reads low. Nothing can tell; only a shorter
        interval (or the 64-bit counters of SNMPv2c/v3) can.
        """
        if key in self._wrap_warned:
            return
        self._wrap_warned.add(key)
        limit = (1 << 32) * column.rate_scale
        log.warning(
            "%s: %s %s is a 32-bit counter on a %.0f Mbit/s interface: it can wrap more than once in "
            "the %.0f s between polls, so rates above %.0f Mbit/s read low; poll at most every %.0f s, "
            "or over SNMPv2c/v3 where the agent has the 64-bit counters",
            self.target.element, column.name, dict(labels), speed_bps / 1e6, self._elapsed,
            limit / self._elapsed / 1e6, limit / speed_bps,
        )

    @staticmethod
    def _gauge_value(column: Column, value: int, values: dict[str, object]) -> float:
        shown: float = value
        if column.sensor_exponent is not None:
            exponent = _int(values.get(column.sensor_exponent))
            if exponent is not None:
                shown = shown * 10.0 ** (3 * (exponent - 9))
        if column.sensor_precision is not None:
            precision = _int(values.get(column.sensor_precision))
            if precision:
                shown = shown / 10.0**precision
        if column.scale is not None:
            shown = shown * column.scale
        return shown


def _suffix_key(suffix: str) -> tuple[int, ...] | tuple[float]:
    try:
        return tuple(int(p) for p in suffix.split("."))
    except ValueError:
        return (float("inf"),)
