"""Identity resolution for staff tools. Personal data: never for anonymous callers."""

from __future__ import annotations

from recovery import errors
from recovery.api import registry
from recovery.api.operations import Reply, actor
from recovery.api.schemas import CandidateOut, ResolveRequest, ResolveResponse
from recovery.audit.services import AuditService
from recovery.clients.models import ApiClient, Scope
from recovery.db import db
from recovery.identity.services import ResolutionService


@registry.operation(
    "POST",
    "/resolve",
    summary="Find the accounts a person's hints point to, with the evidence",
    tag="resolve",
    scope=Scope.RESOLVE,
    body=ResolveRequest,
    responses={200: (ResolveResponse, "candidates, best first (possibly none)")},
    raises=(errors.ValidationFailed,),
)
def resolve(body: ResolveRequest, client: ApiClient) -> Reply:
    """Exact matches on emails, phones, order numbers and PayPal emails score high; fuzzy matches
    (Gmail dots and +tags, names without accents) only rank candidates for a person to judge."""
    candidates = ResolutionService(db.session).resolve(body, limit=body.limit)
    # Who looked up whom is audited: the kinds of hint given (not their values) and the answer.
    given = {
        kind: len(values) for kind, values in body.model_dump(exclude={"limit"}).items() if values
    }
    AuditService(db.session).record(
        actor(client),
        "identity.resolve",
        None,
        hints=given,
        candidates=[str(c.account.public_id) for c in candidates],
    )
    return Reply(200, ResolveResponse(candidates=[CandidateOut.of(c) for c in candidates]))
