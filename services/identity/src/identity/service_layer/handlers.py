"""Identity's handlers: one per command or event, each in one unit of work."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from svix.webhooks import Webhook, WebhookVerificationError

from contracts import identity as msg
from contracts.rpc import ErrorKind
from cortex_runtime.database import UnitOfWork
from cortex_runtime.errors import ServiceError
from cortex_runtime.text import clean_text
from identity.adapters.tables import activity, api_keys, tenants
from identity.domain import keys, rules
from identity.domain.rules import RuleViolation

UowFactory = Callable[[], UnitOfWork]

CLERK_CONSUMER = "clerk_webhook"
MAX_LIVE_KEYS = 100


def _id(kind: str) -> str:
    return f"{kind}_{uuid.uuid4().hex[:20]}"


def invalid(violation: RuleViolation) -> ServiceError:
    return ServiceError(ErrorKind.INVALID, violation.code, str(violation))


def _constraint(exc: IntegrityError) -> str:
    cause = getattr(exc.orig, "__cause__", None)
    return str(getattr(cause, "constraint_name", "") or getattr(exc.orig, "constraint_name", ""))


def _conflict(exc: IntegrityError) -> Exception:
    """The sentence for a unique constraint a tenant change ran into."""
    constraint = _constraint(exc)
    if constraint == "tenants_slug":
        return SLUG_TAKEN
    if constraint in ("tenants_live_email", "tenants_external_id"):
        return ServiceError(
            ErrorKind.CONFLICT, "email_taken", "A tenant with that e-mail already exists."
        )
    return exc


SLUG_TAKEN = ServiceError(ErrorKind.CONFLICT, "slug_taken", "That slug is already taken.")
TENANT_NOT_FOUND = ServiceError(ErrorKind.NOT_FOUND, "tenant_not_found", "No such tenant.")
INVALID_KEY = ServiceError(
    ErrorKind.UNAUTHORIZED,
    "invalid_api_key",
    "The API key is missing, malformed, unknown or revoked.",
)


def _settings(row: sa.Row[Any]) -> msg.TenantSettings:
    return msg.TenantSettings(
        tenant_id=row.id,
        email=row.email,
        display_name=row.display_name,
        slug=row.slug,
        open_scheduling=row.open_scheduling,
        user_type=msg.UserType(row.user_type),
        timezone=row.timezone,
        working_hours={d: row.working_hours[d] for d in msg.WEEKDAYS if d in row.working_hours},
        booking_rules=msg.BookingRules.model_validate(row.booking_rules),
        updated_at=row.updated_at,
        version=row.version,
    )


async def _live_tenant(uow: UnitOfWork, tenant_id: str | None, lock: bool = False) -> sa.Row[Any]:
    if not tenant_id:
        raise TENANT_NOT_FOUND
    query = sa.select(tenants).where(tenants.c.id == tenant_id, tenants.c.deleted_at.is_(None))
    if lock:
        query = query.with_for_update()
    row = (await uow.execute(query)).first()
    if row is None:
        raise TENANT_NOT_FOUND
    return row


# --- tenants ---------------------------------------------------------------------------


async def provision_tenant(
    cmd: msg.ProvisionTenant, uow_factory: UowFactory
) -> msg.TenantProvisioned:
    try:
        async with uow_factory() as uow:
            reply = await provision_in(uow, cmd)
            await uow.commit()
            return reply
    except IntegrityError as exc:
        if _constraint(exc) == "tenants_external_id" and cmd.external_id:
            async with uow_factory() as uow:  # a concurrent delivery created it first
                return await provision_in(uow, cmd)
        raise _conflict(exc) from exc


async def provision_in(uow: UnitOfWork, cmd: msg.ProvisionTenant) -> msg.TenantProvisioned:
    """Create the tenant in ``uow`` unless one with the same external id exists."""
    try:
        email = rules.check_email(cmd.email)
        slug = rules.check_slug(cmd.slug) if cmd.slug else None
    except RuleViolation as violation:
        raise invalid(violation) from violation
    if cmd.external_id:
        existing = (
            await uow.execute(sa.select(tenants).where(tenants.c.external_id == cmd.external_id))
        ).first()
        if existing is not None:
            return msg.TenantProvisioned(created=False, settings=_settings(existing))
    display_name = clean_text(cmd.display_name, rules.MAX_DISPLAY_NAME) or email.split("@")[0]
    row = (
        await uow.execute(
            sa.insert(tenants)
            .values(
                id=_id("tn"),
                external_id=cmd.external_id,
                email=email,
                display_name=display_name,
                user_type=cmd.user_type.value,
                slug=slug,
                timezone="UTC",
                working_hours={
                    day: [i.model_dump() for i in intervals]
                    for day, intervals in rules.DEFAULT_WORKING_HOURS.items()
                },
                booking_rules=msg.BookingRules().model_dump(),
            )
            .returning(tenants)
        )
    ).one()
    settings = _settings(row)
    await uow.add_event(
        msg.TENANT_CREATED.subject,
        msg.TenantCreated(**cmd.caused(tenant_id=settings.tenant_id), settings=settings),
    )
    key = None
    if cmd.first_key_name:
        created = await _insert_key(uow, cmd, settings.tenant_id, cmd.first_key_name)
        key = created.key
    return msg.TenantProvisioned(created=True, settings=settings, key=key)


async def receive_clerk_webhook(
    cmd: msg.ReceiveClerkWebhook, uow_factory: UowFactory, secret: str
) -> msg.ClerkWebhookHandled:
    headers = {
        "svix-id": cmd.svix_id,
        "svix-timestamp": cmd.svix_timestamp,
        "svix-signature": cmd.svix_signature,
    }
    try:
        Webhook(secret).verify(cmd.payload, headers)
    except (WebhookVerificationError, ValueError, binascii.Error) as exc:  # malformed headers too
        raise ServiceError(
            ErrorKind.INVALID,
            "invalid_signature",
            "The webhook signature is invalid or its timestamp is more than 5 minutes off.",
        ) from exc
    try:
        event = json.loads(cmd.payload)
        event_type = str(event["type"])
        data: dict[str, Any] = event["data"]
        if not isinstance(data, dict):
            raise TypeError("data is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise ServiceError(
            ErrorKind.INVALID, "invalid_payload", "The webhook body is not a Clerk event."
        ) from exc

    try:
        async with uow_factory() as uow:
            if not await uow.first_delivery(CLERK_CONSUMER, cmd.svix_id):
                return msg.ClerkWebhookHandled(status="duplicate", event_type=event_type)
            tenant_id: str | None = None
            status: Any = "processed"
            if event_type == "user.created":
                provisioned = await provision_in(uow, _clerk_user(cmd, data))
                tenant_id = provisioned.settings.tenant_id
            elif event_type == "user.updated":
                tenant_id = await _clerk_user_updated(uow, cmd, data)
            elif event_type == "user.deleted":
                tenant_id = await _clerk_user_deleted(uow, cmd, str(data.get("id", "")))
            else:
                status = "ignored"
            await uow.commit()
    except IntegrityError as exc:
        raise _conflict(exc) from exc
    return msg.ClerkWebhookHandled(
        status=status, event_type=event_type, affected_tenant_id=tenant_id
    )


def _clerk_primary_email(data: Mapping[str, Any]) -> str:
    addresses = data.get("email_addresses") or []
    primary = data.get("primary_email_address_id")
    for address in addresses:
        if address.get("id") == primary:
            return str(address.get("email_address", ""))
    return str(addresses[0].get("email_address", "")) if addresses else ""


def _clerk_name(data: Mapping[str, Any]) -> str:
    parts = [data.get("first_name") or "", data.get("last_name") or ""]
    return " ".join(p for p in parts if p) or str(data.get("username") or "")


def _clerk_user(cmd: msg.ReceiveClerkWebhook, data: Mapping[str, Any]) -> msg.ProvisionTenant:
    metadata = data.get("public_metadata") or {}
    user_type = metadata.get("user_type") if isinstance(metadata, dict) else None
    return msg.ProvisionTenant(
        **cmd.caused(),
        email=_clerk_primary_email(data),
        display_name=_clerk_name(data)[:200],
        external_id=str(data.get("id", ""))[:200] or None,
        user_type=msg.UserType(user_type)
        if user_type in ("individual", "developer")
        else "individual",
    )


async def _clerk_user_updated(
    uow: UnitOfWork, cmd: msg.ReceiveClerkWebhook, data: Mapping[str, Any]
) -> str | None:
    row = (
        await uow.execute(
            sa.select(tenants).where(
                tenants.c.external_id == str(data.get("id", "")), tenants.c.deleted_at.is_(None)
            )
        )
    ).first()
    if row is None:  # updated before created arrived: create it now
        return (await provision_in(uow, _clerk_user(cmd, data))).settings.tenant_id
    changes: dict[str, Any] = {}
    email = _clerk_primary_email(data)
    if email and email != row.email:
        try:
            changes["email"] = rules.check_email(email)
        except RuleViolation as violation:
            raise invalid(violation) from violation
    name = clean_text(_clerk_name(data), rules.MAX_DISPLAY_NAME)
    if name and name != row.display_name:
        changes["display_name"] = name
    if changes:
        await _apply_settings(uow, cmd, row.id, changes)
    return str(row.id)


async def _clerk_user_deleted(
    uow: UnitOfWork, cmd: msg.ReceiveClerkWebhook, external_id: str
) -> str | None:
    row = (
        await uow.execute(
            sa.update(tenants)
            .where(tenants.c.external_id == external_id, tenants.c.deleted_at.is_(None))
            .values(
                deleted_at=sa.func.now(),
                open_scheduling=False,
                slug=None,
                updated_at=sa.func.now(),
                version=tenants.c.version + 1,
            )
            .returning(tenants.c.id, tenants.c.version)
        )
    ).first()
    if row is None:
        return None
    revoked = await uow.execute(
        sa.update(api_keys)
        .where(api_keys.c.tenant_id == row.id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=sa.func.now())
        .returning(api_keys.c.id, api_keys.c.prefix)
    )
    for key in revoked.all():
        await uow.add_event(
            msg.API_KEY_REVOKED.subject,
            msg.ApiKeyRevoked(**cmd.caused(tenant_id=row.id), key_id=key.id, prefix=key.prefix),
        )
    await uow.add_event(
        msg.TENANT_DELETED.subject,
        msg.TenantDeleted(
            **cmd.caused(tenant_id=row.id), deleted_tenant_id=row.id, settings_version=row.version
        ),
    )
    return str(row.id)


# --- API keys ----------------------------------------------------------------------------


async def _insert_key(uow: UnitOfWork, cause: Any, tenant_id: str, name: str) -> msg.ApiKeyCreated:
    clean = clean_text(name, 100)
    if not clean:
        raise ServiceError(ErrorKind.INVALID, "invalid_name", "A key needs a name.")
    new = keys.generate()
    row = (
        await uow.execute(
            sa.insert(api_keys)
            .values(
                id=_id("key"),
                tenant_id=tenant_id,
                name=clean,
                prefix=new.prefix,
                secret_hash=new.secret_hash,
            )
            .returning(api_keys)
        )
    ).one()
    info = _key_info(row)
    await uow.add_event(
        msg.API_KEY_CREATED.subject,
        msg.ApiKeyCreatedEvent(
            **cause.caused(tenant_id=tenant_id), key_id=info.id, name=info.name, prefix=info.prefix
        ),
    )
    return msg.ApiKeyCreated(api_key=info, key=new.full)


def _key_info(row: sa.Row[Any]) -> msg.ApiKeyInfo:
    return msg.ApiKeyInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
    )


async def create_api_key(cmd: msg.CreateApiKey, uow_factory: UowFactory) -> msg.ApiKeyCreated:
    async with uow_factory() as uow:
        tenant = await _live_tenant(uow, cmd.tenant_id, lock=True)
        live = (
            await uow.execute(
                sa.select(sa.func.count())
                .select_from(api_keys)
                .where(api_keys.c.tenant_id == tenant.id, api_keys.c.revoked_at.is_(None))
            )
        ).scalar_one()
        if live >= MAX_LIVE_KEYS:
            raise ServiceError(
                ErrorKind.CONFLICT, "too_many_keys", f"A tenant may hold {MAX_LIVE_KEYS} live keys."
            )
        created = await _insert_key(uow, cmd, tenant.id, cmd.name)
        await uow.commit()
    return created


async def list_api_keys(cmd: msg.ListApiKeys, uow_factory: UowFactory) -> msg.ApiKeyList:
    async with uow_factory() as uow:
        tenant = await _live_tenant(uow, cmd.tenant_id)
        rows = await uow.execute(
            sa.select(api_keys)
            .where(api_keys.c.tenant_id == tenant.id, api_keys.c.revoked_at.is_(None))
            .order_by(api_keys.c.created_at, api_keys.c.id)
        )
        return msg.ApiKeyList(keys=[_key_info(row) for row in rows])


async def revoke_api_key(cmd: msg.RevokeApiKey, uow_factory: UowFactory) -> msg.ApiKeyRevokedReply:
    async with uow_factory() as uow:
        row = (
            await uow.execute(
                sa.update(api_keys)
                .where(
                    api_keys.c.id == cmd.key_id,
                    api_keys.c.tenant_id == (cmd.tenant_id or ""),
                    api_keys.c.revoked_at.is_(None),
                )
                .values(revoked_at=sa.func.now())
                .returning(api_keys.c.id, api_keys.c.prefix)
            )
        ).first()
        if row is None:
            raise ServiceError(ErrorKind.NOT_FOUND, "key_not_found", "No such API key.")
        await uow.add_event(
            msg.API_KEY_REVOKED.subject,
            msg.ApiKeyRevoked(**cmd.caused(), key_id=row.id, prefix=row.prefix),
        )
        await uow.commit()
    return msg.ApiKeyRevokedReply(key_id=row.id)


async def verify_api_key(cmd: msg.VerifyApiKey, uow_factory: UowFactory) -> msg.ApiKeyVerified:
    parsed = keys.parse(cmd.key)
    if parsed is None:
        raise INVALID_KEY
    prefix, secret = parsed
    async with uow_factory() as uow:
        row = (
            await uow.execute(
                sa.select(api_keys.c.id, api_keys.c.tenant_id, api_keys.c.secret_hash)
                .join(tenants, tenants.c.id == api_keys.c.tenant_id)
                .where(
                    api_keys.c.prefix == prefix,
                    api_keys.c.revoked_at.is_(None),
                    tenants.c.deleted_at.is_(None),
                )
            )
        ).first()
    stored = row.secret_hash if row is not None else keys.digest("no such key")
    if not keys.matches(secret, stored) or row is None:
        raise INVALID_KEY
    return msg.ApiKeyVerified(key_id=row.id, verified_tenant_id=row.tenant_id)


async def record_key_usage(cmd: msg.RecordKeyUsage, uow_factory: UowFactory) -> msg.UsageRecorded:
    if not cmd.last_used:
        return msg.UsageRecorded(updated=0)
    ids = list(cmd.last_used)
    times = [cmd.last_used[i] for i in ids]
    used = (
        sa.func.unnest(
            sa.cast(ids, sa.ARRAY(sa.Text)), sa.cast(times, sa.ARRAY(sa.DateTime(timezone=True)))
        )
        .table_valued("id", "at")
        .render_derived(name="used")
    )
    async with uow_factory() as uow:
        result = await uow.execute(
            sa.update(api_keys)
            .where(api_keys.c.id == used.c.id)
            .values(
                last_used_at=sa.func.greatest(
                    sa.func.coalesce(api_keys.c.last_used_at, used.c.at), used.c.at
                )
            )
        )
        await uow.commit()
    return msg.UsageRecorded(updated=result.rowcount or 0)  # type: ignore[attr-defined]


# --- settings ----------------------------------------------------------------------------


async def get_settings(cmd: msg.GetSettings, uow_factory: UowFactory) -> msg.SettingsReply:
    async with uow_factory() as uow:
        return msg.SettingsReply(settings=_settings(await _live_tenant(uow, cmd.tenant_id)))


def _validated_changes(cmd: msg.UpdateSettings) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    try:
        if cmd.slug is not None:
            changes["slug"] = rules.check_slug(cmd.slug)
        if cmd.open_scheduling is not None:
            changes["open_scheduling"] = cmd.open_scheduling
        if cmd.booking_rules is not None:
            changes["booking_rules"] = cmd.booking_rules.model_dump(exclude_none=True)
        if cmd.user_type is not None:
            changes["user_type"] = rules.check_user_type(cmd.user_type).value
        if cmd.timezone is not None:
            changes["timezone"] = rules.check_timezone(cmd.timezone)
        if cmd.working_hours is not None:
            hours = rules.check_working_hours(cmd.working_hours)
            changes["working_hours"] = {
                d: [i.model_dump() for i in ivs] for d, ivs in hours.items()
            }
        if cmd.display_name is not None:
            name = clean_text(cmd.display_name, rules.MAX_DISPLAY_NAME)
            if not name:
                raise RuleViolation("invalid_display_name", "display_name cannot be empty.")
            changes["display_name"] = name
    except RuleViolation as violation:
        raise invalid(violation) from violation
    return changes


async def update_settings(cmd: msg.UpdateSettings, uow_factory: UowFactory) -> msg.SettingsReply:
    changes = _validated_changes(cmd)
    try:
        async with uow_factory() as uow:
            current = await _live_tenant(uow, cmd.tenant_id, lock=True)
            if "booking_rules" in changes:
                changes["booking_rules"] = {**current.booking_rules, **changes["booking_rules"]}
            changes = {k: v for k, v in changes.items() if getattr(current, k) != v}
            settings = await _apply_settings(uow, cmd, cmd.tenant_id or "", changes)
            await uow.commit()
    except IntegrityError as exc:
        raise _conflict(exc) from exc
    return msg.SettingsReply(settings=settings)


async def _apply_settings(
    uow: UnitOfWork, cause: Any, tenant_id: str, changes: dict[str, Any]
) -> msg.TenantSettings:
    row = (
        await uow.execute(
            sa.update(tenants)
            .where(tenants.c.id == tenant_id)
            .values(
                **changes,
                updated_at=sa.func.now(),
                version=tenants.c.version + (1 if changes else 0),
            )
            .returning(tenants)
        )
    ).one()
    settings = _settings(row)
    if changes:
        await uow.add_event(
            msg.SETTINGS_CHANGED.subject,
            msg.SettingsChanged(
                **cause.caused(tenant_id=tenant_id), settings=settings, changed=sorted(changes)
            ),
        )
    return settings


# --- resolution --------------------------------------------------------------------------

IDENTITY_NOT_FOUND = ServiceError(
    ErrorKind.NOT_FOUND, "identity_not_found", "No public scheduling page for that identity."
)


async def resolve_identity(
    cmd: msg.ResolveIdentity, uow_factory: UowFactory
) -> msg.IdentityResolved:
    wanted = rules.normalise_email(cmd.identity)
    async with uow_factory() as uow:
        row = (
            await uow.execute(
                sa.select(tenants.c.email, tenants.c.slug, tenants.c.display_name).where(
                    sa.func.lower(tenants.c.email) == wanted,
                    tenants.c.deleted_at.is_(None),
                    tenants.c.open_scheduling.is_(True),
                    tenants.c.slug.is_not(None),
                )
            )
        ).first()
    if row is None:
        raise IDENTITY_NOT_FOUND
    return msg.IdentityResolved(
        identity=cmd.identity.strip(), slug=row.slug, display_name=row.display_name
    )


# --- activity ------------------------------------------------------------------------------


_INT64 = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _encode_cursor(occurred_at: datetime, seq: int) -> str:
    micros = (occurred_at - _EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"a:{micros}:{seq}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    """(occurred_at, seq) of the last item of the previous page."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, micros, seq = text.split(":")
        if kind != "a" or not (0 <= int(micros) <= _INT64 and 0 <= int(seq) <= _INT64):
            raise ValueError(kind)
        return _EPOCH + timedelta(microseconds=int(micros)), int(seq)
    except (ValueError, UnicodeDecodeError, OverflowError, OSError) as exc:
        raise ServiceError(ErrorKind.INVALID, "invalid_cursor", "The cursor is not valid.") from exc


async def list_activity(cmd: msg.ListActivity, uow_factory: UowFactory) -> msg.ActivityPage:
    query = (
        sa.select(activity)
        .where(activity.c.tenant_id == (cmd.tenant_id or ""))
        .order_by(activity.c.occurred_at.desc(), activity.c.seq.desc())
        .limit(cmd.limit + 1)
    )
    if cmd.cursor:  # newest first by when it happened: consumers store in any order
        at, seq = _decode_cursor(cmd.cursor)
        query = query.where(sa.tuple_(activity.c.occurred_at, activity.c.seq) < (at, seq))
    async with uow_factory() as uow:
        rows = (await uow.execute(query)).all()
    page = rows[: cmd.limit]
    items = [
        msg.ActivityItem(
            id=str(row.seq),
            type=row.type,
            summary=row.summary,
            occurred_at=row.occurred_at,
            ids=row.ids,
        )
        for row in page
    ]
    more = len(rows) > cmd.limit
    last = page[-1] if page else None
    cursor = _encode_cursor(last.occurred_at, last.seq) if more and last is not None else None
    return msg.ActivityPage(items=items, next_cursor=cursor)


async def record_activity(
    uow: UnitOfWork,
    event: Any,
    kind: str,
    summary: str,
    ids: dict[str, str],
) -> None:
    """Project one event into the feed; its id makes a re-sent event a no-op."""
    if not event.tenant_id:
        return
    await uow.execute(
        sa.dialects.postgresql.insert(activity)
        .values(
            event_id=event.message_id,
            tenant_id=event.tenant_id,
            type=kind,
            summary=clean_text(summary, 300),
            occurred_at=event.occurred_at or datetime.now(UTC),
            ids=ids,
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
