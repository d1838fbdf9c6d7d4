"""Every mapped class, imported in one place so ``Base.metadata`` is complete (Alembic, tests)."""

from recovery.accounts.models import Account, AccountStatus, Identity, IdentitySource
from recovery.audit.models import AuditEvent
from recovery.clients.models import ApiClient, Scope
from recovery.db import Base
from recovery.flows.models import FlowStatus, RecoveryFlow
from recovery.orders.models import Order, PaymentMethod
from recovery.outbox.models import Channel, MessageStatus, OutboxMessage
from recovery.tokens.models import Secret, SecretKind

__all__ = [
    "Account",
    "AccountStatus",
    "ApiClient",
    "AuditEvent",
    "Base",
    "Channel",
    "FlowStatus",
    "Identity",
    "IdentitySource",
    "MessageStatus",
    "Order",
    "OutboxMessage",
    "PaymentMethod",
    "RecoveryFlow",
    "Scope",
    "Secret",
    "SecretKind",
]
