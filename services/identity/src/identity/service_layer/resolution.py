"""Identity resolution: an e-mail address to the public scheduling page it opens."""

from __future__ import annotations

from contracts import identity as msg
from contracts.formats import normalise_email
from contracts.rpc import ErrorKind
from cortex_runtime.errors import ServiceError
from identity.adapters import tenants
from identity.service_layer.deps import IdentityDeps

IDENTITY_NOT_FOUND = ServiceError(
    ErrorKind.NOT_FOUND, "identity_not_found", "No public scheduling page for that identity."
)


async def resolve_identity(cmd: msg.ResolveIdentity, deps: IdentityDeps) -> msg.IdentityResolved:
    async with deps.uow() as uow:
        page = await tenants.public_page(uow, normalise_email(cmd.identity))
    if page is None:
        raise IDENTITY_NOT_FOUND
    return msg.IdentityResolved(
        identity=cmd.identity.strip(), slug=page.slug, display_name=page.display_name
    )
