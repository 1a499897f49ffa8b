"""Ratings of generations, and each model's totals that observed quality is made of.

A rating is stored once per generation (``feedback`` table), by the key that made the call or
an admin. Every process keeps each model's count and sum of scores in memory for routing:
loaded at start, and brought up to date through the change feed whoever wrote a rating (this
process, another replica), so a model's observed quality is the same on every replica.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from ai1net.server import rules, storage
from ai1net.server.errors import AlreadyExists, NotFound
from ai1net.server.keys import Notify, Principal, _nobody
from ai1net.server.routing import NO_RATINGS, Ratings
from ai1net.server.storage import Database, utcnow
from ai1net.server.tables import FeedbackRow, UsageEventRow


@dataclass(frozen=True, slots=True)
class Rating:
    generation_id: str
    model: str
    score: float
    comment: str
    created_at: datetime


class FeedbackBoard:
    def __init__(self, *, db: Database, notify: Notify | None = None) -> None:
        self._db = db
        self._notify = notify or _nobody
        self._ratings: dict[str, Ratings] = {}

    def of(self, model: str) -> Ratings:
        return self._ratings.get(model, NO_RATINGS)

    async def load(self) -> None:
        query = select(FeedbackRow.model, func.count(), func.sum(FeedbackRow.score)) \
            .group_by(FeedbackRow.model)
        async with self._db.session() as session:
            rows = (await session.exec(query)).all()
        self._ratings = {model: Ratings(int(count), float(total or 0.0))
                         for model, count, total in rows}

    async def reload_one(self, generation_id: str) -> None:
        """A rating was added: recount the model it rates."""
        async with self._db.session() as session:
            row = await session.get(FeedbackRow, generation_id)
            if row is None:
                return
            count, total = (await session.exec(
                select(func.count(), func.sum(FeedbackRow.score))
                .where(FeedbackRow.model == row.model))).one()
        self._ratings[row.model] = Ratings(int(count), float(total or 0.0))

    async def rate(self, caller: Principal, *, generation_id: str, score: float,
                   comment: str) -> Rating:
        """Store one rating; the caller flushed its process's usage first, so that a call
        just made is found."""
        for name, value in (("generation_id", generation_id), ("score", score),
                            ("comment", comment)):
            rules.FEEDBACK[name].check(name, value)
        async with self._db.session() as session:
            call = await session.get(UsageEventRow, generation_id)
            # Someone else's generation is as unknown as one that never was.
            if call is None or (call.key_id != caller.id and not caller.is_admin):
                raise NotFound(f"generation_id: no generation {generation_id!r} of yours",
                               field="generation_id")
            row = FeedbackRow(generation_id=generation_id, model=call.model, key_id=caller.id,
                              score=float(score), comment=comment, created_at=utcnow())
            session.add(row)
            await storage.record_change(session=session, kind="feedback", item_id=generation_id)
            try:
                await session.commit()
            except IntegrityError as exc:
                raise AlreadyExists(f"generation {generation_id!r} is already rated") from exc
        await self.reload_one(generation_id)
        await self._notify("feedback", generation_id)
        return Rating(generation_id=generation_id, model=row.model, score=row.score,
                      comment=row.comment, created_at=row.created_at)
