"""The shop pushes accounts and orders: one at a time (PUT) or in bulk (NDJSON import)."""

from __future__ import annotations

from flask import current_app, request

from recovery import errors
from recovery.accounts.schemas import AccountIn, AccountRecord
from recovery.accounts.services import AccountService
from recovery.api import registry
from recovery.api.operations import Reply, actor
from recovery.api.schemas import AccountOut, ImportSummaryOut, OrderOut
from recovery.audit.services import AuditService
from recovery.clients.models import ApiClient, Scope
from recovery.db import db
from recovery.ingest.services import Importer, ImportLine, bounded_lines
from recovery.orders.schemas import OrderIn, OrderRecord
from recovery.orders.services import OrderService
from recovery.validation import validate

NDJSON_MEDIA_TYPES = ("application/x-ndjson", "application/jsonl")


@registry.operation(
    "PUT",
    "/accounts/{account_id}",
    summary="Create or replace an account and its identities",
    tag="ingest",
    scope=Scope.INGEST,
    body=AccountIn,
    responses={201: (AccountOut, "created"), 200: (AccountOut, "updated or unchanged")},
    raises=(errors.IdentityConflict, errors.ValidationFailed),
)
def put_account(account_id: str, body: AccountIn, client: ApiClient) -> Reply:
    """Idempotent: the same body twice leaves the same state. The identities listed replace those
    the shop gave before (identities the service verified itself stay). An identity that belongs
    to another account is a 409 ``identity_conflict`` and nothing of the request is stored."""
    record = validate(AccountRecord, {**body.model_dump(), "account_id": account_id})
    service = AccountService(db.session)
    (outcome,) = service.upsert_many([record])
    if outcome.error is not None:
        raise outcome.error
    AuditService(db.session).record(
        actor(client), f"account.{outcome.result}", ("account", account_id)
    )
    account = service.get(account_id)
    return Reply(201 if outcome.result == "created" else 200, AccountOut.of(account))


@registry.operation(
    "GET",
    "/accounts/{account_id}",
    summary="Read an account as this service knows it",
    tag="ingest",
    scope=Scope.INGEST,
    responses={200: (AccountOut, "the account")},
    raises=(errors.NotFound,),
)
def get_account(account_id: str, client: ApiClient) -> Reply:
    """Identities are shown masked; the shop knows their values already."""
    return Reply(200, AccountOut.of(AccountService(db.session).get(account_id)))


@registry.operation(
    "PUT",
    "/orders/{order_number}",
    summary="Create or replace an order (evidence for identity resolution)",
    tag="ingest",
    scope=Scope.INGEST,
    body=OrderIn,
    responses={201: (OrderOut, "created"), 200: (OrderOut, "updated or unchanged")},
    raises=(errors.ValidationFailed,),
)
def put_order(order_number: str, body: OrderIn, client: ApiClient) -> Reply:
    """The order number is normalised (upper case, no spaces or dashes). ``account_id`` must name
    an account pushed before."""
    record = validate(OrderRecord, {**body.model_dump(), "order_number": order_number})
    service = OrderService(db.session)
    (outcome,) = service.upsert_many([record])
    if outcome.error is not None:
        raise outcome.error
    AuditService(db.session).record(
        actor(client), f"order.{outcome.result}", ("order", record.order_number)
    )
    order = service.get(record.order_number)
    return Reply(201 if outcome.result == "created" else 200, OrderOut.of(order))


@registry.operation(
    "POST",
    "/import",
    summary="Bulk import accounts and orders (NDJSON)",
    tag="ingest",
    scope=Scope.INGEST,
    body=ImportLine,  # documents one line; the importer parses the stream itself
    body_media_type=NDJSON_MEDIA_TYPES[0],
    responses={200: (ImportSummaryOut, "what was stored and which lines were refused")},
    raises=(errors.UnsupportedMediaType,),
)
def import_ndjson(client: ApiClient) -> Reply:
    """One JSON object per line: ``{"type": "account", "account_id": ..., <account fields>}`` or
    ``{"type": "order", "order_number": ..., <order fields>}``. Lines are committed in batches; a bad
    line is reported with its number and never keeps the others out."""
    if request.mimetype not in NDJSON_MEDIA_TYPES:
        raise errors.UnsupportedMediaType(f"send {NDJSON_MEDIA_TYPES[0]}")
    config = current_app.config
    importer = Importer(db.session, config["IMPORT_BATCH_SIZE"], config["IMPORT_WORKERS"])
    for _ in importer.run(bounded_lines(request.stream)):
        db.session.commit()  # a batch boundary: durable progress, flat memory
    summary = importer.summary
    AuditService(db.session).record(
        actor(client),
        "ingest.import",
        None,
        lines=summary.lines,
        accepted=summary.accepted,
        rejected=summary.rejected,
    )
    return Reply(200, ImportSummaryOut.of(summary))
