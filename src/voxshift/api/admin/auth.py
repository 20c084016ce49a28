"""Who is calling /admin/v1: the bearer token, checked by the token service on every request.

Routes take :data:`Viewer` (any live token) or :data:`Operator` (a token with the operator role);
the principal's ``actor`` (``token:<name>``) is what they write into the audit trail.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from voxshift.api.deps import runtime
from voxshift.errors import Forbidden
from voxshift.services.tokens.open import build_tokens
from voxshift.services.tokens.service import Principal, TokenService

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="AdminToken",
    description="An admin token from `voxshift tokens create NAME --role viewer|operator`.",
)


def token_service(request: Request) -> TokenService:
    """One service (and so one lookup cache) per running runtime."""
    rt = runtime(request)
    held = getattr(request.app.state, "admin_tokens", None)
    if held is None or held[0] is not rt:
        held = (rt, build_tokens(rt.settings, rt.backends.database))
        request.app.state.admin_tokens = held
    service: TokenService = held[1]
    return service


async def viewer(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    return await token_service(request).authenticate(credentials.credentials if credentials else None)


async def operator(principal: Annotated[Principal, Depends(viewer)]) -> Principal:
    if not principal.can_change:
        raise Forbidden(
            f"token {principal.name!r} has the viewer role: changes need an operator token", code="forbidden"
        )
    return principal


Viewer = Annotated[Principal, Depends(viewer)]
Operator = Annotated[Principal, Depends(operator)]
