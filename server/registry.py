"""The model registry: validation, ownership, persistence, and the in-memory cache
that serves every generate call without SQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from ai1net.common.ids import new_id
from ai1net.server import audit, rules, storage
from ai1net.server.crypto import CredentialBox
from ai1net.server.endpoints import check_endpoint
from ai1net.server.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from ai1net.server.keys import Notify, Principal, _nobody
from ai1net.server.money import usd_to_nanos
from ai1net.server.storage import Database, as_utc, utcnow
from ai1net.server.tables import ModelRow

CREDENTIAL_NAMES = rules.CREDENTIAL_NAMES
# Prices as given (USD) → their columns (nano-dollars).
_PRICE_COLUMNS = {"input_per_1k_tokens": "input_price_nanos",
                  "output_per_1k_tokens": "output_price_nanos",
                  "per_request_usd": "request_price_nanos"}


@dataclass(frozen=True, slots=True)
class Verification:
    """The last conformance check of a model."""

    verified_at: datetime
    passed: bool
    summary: str


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """A live model as the hot path sees it; credentials stay out of every repr."""

    id: str
    name: str
    owner: str
    type: str
    endpoint: str
    auth_type: str
    input_price_nanos: int
    output_price_nanos: int
    request_price_nanos: int
    capabilities: tuple[str, ...]
    specialties: tuple[str, ...]
    avg_latency_ms: float
    accuracy_score: float
    cost_efficiency: str
    timeout_ms: int
    first_byte_timeout_ms: int
    max_response_bytes: int
    max_event_bytes: int
    max_concurrency: int
    api: str
    upstream_model: str
    description: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
    has_credentials: bool
    # The outbound auth header, ready to send.
    auth_headers: Mapping[str, str] = dataclasses.field(repr=False, compare=False)
    verification: Verification | None = None
    # A GET the gateway probes on a schedule (probes.py); "" when none.
    health_url: str = ""

    @property
    def call_url(self) -> str:
        return call_url(self.api, self.endpoint)

    def offers(self, capability: str) -> bool:
        return capability.lower() in (c.lower() for c in self.capabilities)


@dataclass(slots=True)
class ModelChanges:
    """Fields a provider sets; None means "unchanged" (update) or "default" (register)."""

    name: str | None = None
    type: str | None = None
    endpoint: str | None = None
    auth_type: str | None = None
    credentials: dict[str, str] | None = dataclasses.field(default=None, repr=False)
    input_per_1k_tokens: float | None = None
    output_per_1k_tokens: float | None = None
    per_request_usd: float | None = None
    capabilities: list[str] | None = None
    avg_latency_ms: float | None = None
    accuracy_score: float | None = None
    cost_efficiency: str | None = None
    specialties: list[str] | None = None
    timeout_ms: int | None = None
    first_byte_timeout_ms: int | None = None
    max_response_bytes: int | None = None
    max_event_bytes: int | None = None
    max_concurrency: int | None = None
    api: str | None = None
    upstream_model: str | None = None
    health_url: str | None = None
    enabled: bool | None = None
    description: str | None = None


class Registry:
    def __init__(self, *, db: Database, box: CredentialBox, allow_private: bool,
                 notify: Notify | None = None) -> None:
        self._db = db
        self._notify = notify or _nobody
        self._box = box
        self._allow_private = allow_private
        self._models: dict[str, ModelRecord] = {}

    async def load(self) -> None:
        async with self._db.session() as session:
            rows = await storage.live_models(session=session)
        self._models = {row.name: self._record(row) for row in rows}

    def get(self, name: str) -> ModelRecord:
        model = self._models.get(name)
        if model is None:
            raise NotFound(f"model {name!r} not found")
        return model

    def find(self, name: str) -> ModelRecord | None:
        return self._models.get(name)

    def all(self) -> Iterable[ModelRecord]:
        """Every live model (a view: routing reads it without copying)."""
        return self._models.values()

    def list(self, *, type: str = "", capability: str = "", specialty: str = "",
             page_size: int = 0, page_token: str = "") -> tuple[list[ModelRecord], str]:
        if type:
            rules.MODEL["type"].check("type", type)
        rules.PAGE_SIZE.check("page_size", page_size)
        size = page_size or rules.DEFAULT_PAGE_SIZE
        after = rules.decode_cursor(page_token) if page_token else ""
        picked = sorted((m for m in self._models.values()
                         if m.name > after and _matches(m, type, capability, specialty)),
                        key=lambda m: m.name)
        page = picked[:size]
        more = len(picked) > size
        return page, rules.encode_cursor(page[-1].name) if more else ""

    async def register(self, owner: Principal, changes: ModelChanges) -> ModelRecord:
        fields = _validate(changes, creating=True)
        await self._check_endpoint(fields)
        if fields["name"] in self._models:
            raise AlreadyExists(f"model {fields['name']!r} already exists")
        now = utcnow()
        columns = self._columns(fields)
        # _validate checked these four are strings; the optional columns are set after.
        row = ModelRow(id=new_id("mdl"), owner=owner.id, created_at=now, updated_at=now,
                       name=str(columns.pop("name")), type=str(columns.pop("type")),
                       endpoint=str(columns.pop("endpoint")),
                       auth_type=str(columns.pop("auth_type")))
        for column, value in columns.items():
            setattr(row, column, value)
        async with self._db.session() as session:
            session.add(row)
            await storage.record_change(session=session, kind="model", item_id=row.id)
            audit.add(session, "model.register", row.name, _as_paths(fields))
            try:
                await session.commit()
            except IntegrityError as exc:
                raise AlreadyExists(f"model {fields['name']!r} already exists") from exc
        await self._notify("model", row.id)
        return self.refresh(row)

    async def update(self, caller: Principal, name: str, changes: ModelChanges) -> ModelRecord:
        self._authorize(caller, self.get(name))
        fields = _validate(changes, creating=False)
        await self._check_endpoint(fields)
        new_name = fields.get("name", name)
        if new_name != name and new_name in self._models:
            raise AlreadyExists(f"model {new_name!r} already exists")
        async with self._db.session() as session:
            row = await self._live_row(session, name)
            merged = {**self._fields_of(row), **fields}
            _check_credentials(merged)
            for column, value in self._columns(fields).items():
                setattr(row, column, value)
            row.updated_at = utcnow()
            session.add(row)
            await storage.record_change(session=session, kind="model", item_id=row.id)
            audit.add(session, "model.update", name, _as_paths(fields))
            try:
                await session.commit()
            except IntegrityError as exc:
                # The row is unusable after a failed flush: name the conflict from the input.
                raise AlreadyExists(f"model {new_name!r} already exists") from exc
        if row.name != name:
            self._models.pop(name, None)
        await self._notify("model", row.id)
        return self.refresh(row)

    async def validated(self, changes: ModelChanges) -> dict[str, object]:
        """A registration's fields, checked as `register` checks them, without storing."""
        fields = _validate(changes, creating=True)
        await self._check_endpoint(fields)
        return fields

    def owned(self, caller: Principal, name: str) -> ModelRecord:
        """The model, when ``caller`` owns it or is an admin."""
        model = self.get(name)
        self._authorize(caller, model)
        return model

    async def verified(self, name: str, *, passed: bool, summary: str) -> ModelRecord:
        """Store the outcome of a conformance check on the model."""
        async with self._db.session() as session:
            row = await self._live_row(session, name)
            row.verified_at, row.verification_passed = utcnow(), passed
            row.verification_summary = summary[:2000]
            session.add(row)
            await storage.record_change(session=session, kind="model", item_id=row.id)
            await session.commit()
        await self._notify("model", row.id)
        return self.refresh(row)

    async def delete(self, caller: Principal, name: str) -> None:
        self._authorize(caller, self.get(name))
        async with self._db.session() as session:
            row = await self._live_row(session, name)
            row.deleted_at = row.updated_at = utcnow()
            row.enabled = False
            session.add(row)
            await storage.record_change(session=session, kind="model", item_id=row.id)
            audit.add(session, "model.delete", name)
            await session.commit()
        self._models.pop(name, None)
        await self._notify("model", row.id)

    def refresh(self, row: ModelRow) -> ModelRecord:
        """Bring the cache in line with a row written here or by another replica."""
        for name, model in list(self._models.items()):
            if model.id == row.id:
                del self._models[name]
        record = self._record(row)
        if row.deleted_at is None:
            self._models[row.name] = record
        return record

    async def reload_one(self, model_id: str) -> None:
        async with self._db.session() as session:
            row = await session.get(ModelRow, model_id)
        if row is not None:
            self.refresh(row)

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    def _authorize(caller: Principal, model: ModelRecord) -> None:
        if not caller.is_admin and model.owner != caller.id:
            raise PermissionDenied(f"model {model.name!r} belongs to another provider")

    async def _check_endpoint(self, fields: dict[str, object]) -> None:
        for field in ("endpoint", "health_url"):
            url = fields.get(field)
            if isinstance(url, str) and url:
                await check_endpoint(url, allow_private=self._allow_private, field=field)

    @staticmethod
    async def _live_row(session: AsyncSession, name: str) -> ModelRow:
        row = await storage.live_model(session=session, name=name)
        if row is None:
            raise NotFound(f"model {name!r} not found")
        return row

    def _columns(self, fields: dict[str, object]) -> dict[str, object]:
        columns = dict(fields)
        if "credentials" in columns:
            creds = columns.pop("credentials")
            # _check_credentials_shape made it a dict of strings.
            columns["credentials_encrypted"] = (
                self._box.seal(cast(dict[str, str], creds)) if creds else None)
        for price, column in _PRICE_COLUMNS.items():
            if price in columns:
                columns[column] = usd_to_nanos(cast(float, columns.pop(price)))  # a checked number
        return columns

    def _fields_of(self, row: ModelRow) -> dict[str, object]:
        creds = self._box.open(row.credentials_encrypted) if row.credentials_encrypted else {}
        return {"auth_type": row.auth_type, "credentials": creds}

    def _record(self, row: ModelRow) -> ModelRecord:
        creds = self._box.open(row.credentials_encrypted) if row.credentials_encrypted else {}
        return ModelRecord(
            id=row.id, name=row.name, owner=row.owner, type=row.type, endpoint=row.endpoint,
            auth_type=row.auth_type, input_price_nanos=row.input_price_nanos,
            output_price_nanos=row.output_price_nanos,
            request_price_nanos=row.request_price_nanos, capabilities=tuple(row.capabilities),
            specialties=tuple(row.specialties), avg_latency_ms=row.avg_latency_ms,
            accuracy_score=row.accuracy_score, cost_efficiency=row.cost_efficiency,
            timeout_ms=row.timeout_ms, first_byte_timeout_ms=row.first_byte_timeout_ms,
            max_response_bytes=row.max_response_bytes, max_event_bytes=row.max_event_bytes,
            max_concurrency=row.max_concurrency, api=row.api,
            upstream_model=row.upstream_model, health_url=row.health_url,
            description=row.description,
            enabled=row.enabled and row.deleted_at is None,
            created_at=as_utc(row.created_at), updated_at=as_utc(row.updated_at),
            has_credentials=bool(creds), auth_headers=auth_headers(row.auth_type, creds),
            verification=Verification(as_utc(row.verified_at), row.verification_passed,
                                      row.verification_summary)
            if row.verified_at is not None else None)


def call_url(api: str, endpoint: str) -> str:
    """Where calls go: the endpoint, or an OpenAI-compatible base URL's chat completions."""
    return f"{endpoint.rstrip('/')}/chat/completions" if api == "openai" else endpoint


def auth_headers(auth_type: str, credentials: Mapping[str, str]) -> dict[str, str]:
    secret = credential_value(credentials)
    if auth_type == "bearer" and secret:
        return {"Authorization": f"Bearer {secret}"}
    if auth_type == "api_key" and secret:
        return {"x-api-key": secret}
    return {}


def credential_value(credentials: Mapping[str, str]) -> str:
    for name in CREDENTIAL_NAMES:
        if credentials.get(name):
            return credentials[name]
    return next(iter(credentials.values()), "") if len(credentials) == 1 else ""


# -- validation (pure) -------------------------------------------------------------------


def _validate(changes: ModelChanges, *, creating: bool) -> dict[str, object]:
    """The set fields of ``changes``, checked; at registration with defaults filled in."""
    fields = {k: v for k, v in dataclasses.asdict(changes).items() if v is not None}
    if creating:
        for required in ("name", "type", "endpoint"):
            if not fields.get(required):
                raise InvalidArgument(required, "is required")
        fields.setdefault("auth_type", "bearer" if fields.get("credentials") else "none")
    for name, value in fields.items():
        _check(name, value)
    if creating:
        _check_credentials(fields)
    return fields


def _check_credentials(fields: Mapping[str, object]) -> None:
    creds = fields.get("credentials") or {}
    assert isinstance(creds, dict)
    if fields.get("auth_type") in rules.AUTH_WITH_CREDENTIAL and not credential_value(creds):
        raise InvalidArgument("credentials", f"an api_key is required for auth_type "
                                             f"{fields.get('auth_type')}")


# ModelChanges field → its rule and JSON path (the name errors give).
_RULES = {rules.leaf(path): (path, rule) for path, rule in rules.MODEL.items()}


def _as_paths(fields: Mapping[str, object]) -> dict[str, object]:
    """Checked fields by their JSON paths, as the API and the audit trail name them."""
    return {_RULES[name][0]: value for name, value in fields.items()}


def _check(name: str, value: object) -> None:
    path, rule = _RULES[name]
    rule.check(path, value)


def _matches(model: ModelRecord, type: str, capability: str, specialty: str) -> bool:
    return ((not type or model.type == type)
            and (not capability or model.offers(capability))
            and (not specialty or specialty.lower() in (s.lower() for s in model.specialties)))
