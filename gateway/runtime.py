"""Process-wide resources created by the lifespan and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.rules.breaker import BreakerSettings
from gateway.auth import Authenticator
from gateway.notifications import NotificationHub
from gateway.replica import ReplicaWatcher
from gateway.session_watch import SessionWatch
from gateway.settings import Settings
from resolvers.context import Database

__all__ = ["Runtime"]


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    database_url: str
    db: Database
    auth: Authenticator
    hub: NotificationHub
    sessions: SessionWatch  # open WebSockets / event streams by credential
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    replica: ReplicaWatcher | None = None  # with DATABASE_READ_URL
