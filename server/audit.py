"""The audit trail (CONTRACT §2.6): who changed which key, model or usage report, when, with
which request, and what changed — never a credential or a key.

A change adds its row in the same transaction as the change itself (`add(session, ...)`),
so the trail holds every change that happened and none that did not. Nothing here updates or
deletes a row, and the table's triggers refuse both (tables.APPEND_ONLY).

Who is acting comes from the call being served: the auth guard sets it (`acting`) from
the caller's key and ``x-request-id``; start-up work is the ``system``, the CLI's
database writes are ``cli``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ai1net.common.ids import new_id
from ai1net.server import rules
from ai1net.server.tables import AuditEventRow

ID_PREFIX = "aud"
# Fields whose values never enter the trail: only that they changed.
SECRET_FIELDS = frozenset({"credentials"})
CHANGED = "(changed)"


@dataclass(frozen=True, slots=True)
class Actor:
    key_id: str
    request_id: str = ""


SYSTEM = Actor("system")
CLI = Actor("cli")
_actor: ContextVar[Actor] = ContextVar("ai1net_actor", default=SYSTEM)


def acting(actor: Actor) -> Token[Actor]:
    """Make ``actor`` the author of the changes made in this context."""
    return _actor.set(actor)


def add(session: AsyncSession, action: str, target: str,
        changes: Mapping[str, Any] | None = None) -> AuditEventRow:
    """Append one event to ``session``: it commits, or not, with the change it describes."""
    rules.AUDIT["action"].check("action", action)  # a misspelt action is a bug: fail loudly
    actor = _actor.get()
    event_id = new_id(ID_PREFIX)
    row = AuditEventRow(id=event_id, at=moment_of(event_id), actor_key_id=actor.key_id,
                        action=action, target=target, request_id=actor.request_id,
                        changes=redacted(changes or {}))
    session.add(row)
    return row


def redacted(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {name: CHANGED if name in SECRET_FIELDS else value
            for name, value in changes.items()}


def moment_of(event_id: str) -> datetime:
    """The time an id was made (its first 48 bits are Unix milliseconds, common.ids.new_id)."""
    return datetime.fromtimestamp(_millis(event_id) / 1000, UTC)


def _millis(event_id: str) -> int:
    return int(event_id.partition("_")[2][:12], 16)


def _bound(ms: int) -> str:
    """The smallest id made at ``ms``: ids sort by time, so a period is an id range."""
    return f"{ID_PREFIX}_{ms:012x}"


# -- reading --------------------------------------------------------------------------------


async def events(*, session: AsyncSession, start_ms: int | None = None,
                 end_ms: int | None = None, actor: str = "", action: str = "",
                 page_size: int = 0, page_token: str = "",
                 ) -> tuple[Sequence[AuditEventRow], str]:
    """A page of events, newest first, and the token of the next page ("" on the last)."""
    if action:
        rules.AUDIT["action"].check("action", action)
    rules.PAGE_SIZE.check("page_size", page_size)
    size = page_size or rules.DEFAULT_PAGE_SIZE
    query = select(AuditEventRow).order_by(col(AuditEventRow.id).desc()).limit(size + 1)
    if start_ms is not None:
        query = query.where(col(AuditEventRow.id) >= _bound(start_ms))
    if end_ms is not None:
        query = query.where(col(AuditEventRow.id) < _bound(end_ms))
    if actor:
        query = query.where(AuditEventRow.actor_key_id == actor)
    if action:
        query = query.where(AuditEventRow.action == action)
    if page_token:
        query = query.where(col(AuditEventRow.id) < rules.decode_cursor(page_token))
    rows = (await session.exec(query)).all()
    page = rows[:size]
    return page, rules.encode_cursor(page[-1].id) if len(rows) > size else ""
