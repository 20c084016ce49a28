"""``GET /v2/legacy/objects/{legacy key}``: old chat links to legacy audio keep working after the sunset.

The legacy handed out presigned URLs of ``voice/{agent}/{user}/.../{uuid}.ext`` objects; once the data
migration copied them (to a v2 key with the real extension), this answers 307 with a signed URL of
the v2 copy. A key the migration did not carry over is 404 with the OpenAI error body.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from voxshift.api.deps import runtime
from voxshift.services.sunset.migrate import legacy_object_url

router = APIRouter()


@router.get("/v2/legacy/objects/{legacy_key:path}", include_in_schema=False)
async def legacy_object(request: Request, legacy_key: str) -> RedirectResponse:
    rt = runtime(request)
    backends = rt.backends
    url = await legacy_object_url(
        backends.database, backends.objects, legacy_key, backends.settings.signed_url_ttl_s
    )
    # 307, not 302: the client repeats the same method (a HEAD stays a HEAD), and it is not cached
    # as permanent, so the link follows the v2 copy if it ever moves again.
    return RedirectResponse(url, status_code=307)
