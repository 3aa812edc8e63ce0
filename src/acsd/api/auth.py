"""Bearer tokens and tenancy: who is calling, and which customers' records they may touch.

Roles (seed 000): ADMIN sees everything; RESELLER sees its own customer record and every
customer and sub-reseller below it at any depth; OWNER and MANAGER see their own customer.
Tokens are stored as SHA-256 hashes: a token is shown once, when created, and never again.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from acsd import clock
from acsd.api.errors import TOKEN_REFUSED, access_denied, not_found, unauthorized
from acsd.audit import cli_record
from acsd.hostaddr import counted_as
from acsd.ids import is_id, new_id, normal_id
from acsd.listen_socket import client_address
from acsd.log import get_logger
from acsd.models import DeviceName
from acsd.rules import key_problem
from acsd.store.base import CustomerRecord, Store, TokenRecord
from acsd.throttle import Throttle

log = get_logger("acsd.api")

ROLES: tuple[str, ...] = ("ADMIN", "RESELLER", "OWNER", "MANAGER")
TOKEN_PREFIX = "acsd_"


def hash_token(token: str) -> str:
    # surrogateescape: a header byte that is not UTF-8 (aiohttp's lone surrogate) is hashed
    # as the byte it was, and is an unknown token (401), not a failure to encode (500)
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


#: ``--expires`` as a duration: a whole number of seconds, minutes, hours, days or weeks
#: ("m" is minutes: a token that ends sooner than meant fails safe)
_DURATION = re.compile(r"([0-9]{1,9})([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_EXPIRES_FORMS = (
    "give a duration from now (90d, 12h, 30m, 45s, 2w) or an RFC 3339 date-time with its "
    "offset (2030-01-31T18:00:00Z, 2030-01-31T19:00:00+01:00)"
)


def parse_expires(text: str, now: float) -> float:
    """``acsd token create --expires``: when the token stops working, POSIX seconds.
    ValueError (exit 2) for what is neither form, a time zone left out, or a time that is
    not after ``now``."""
    text = text.strip()
    if (duration := _DURATION.fullmatch(text)) is not None:
        at = now + int(duration[1]) * _UNIT_SECONDS[duration[2]]
    else:
        try:
            # (RFC 3339's lower-case t and z, which fromisoformat does not take)
            when = datetime.fromisoformat(text.upper())
        except ValueError:
            when = None
        if when is None:
            raise ValueError(f"--expires: neither a duration nor a date-time: {_EXPIRES_FORMS}")
        if when.tzinfo is None:
            # (the server's zone or UTC? a contractor's last day must not move by hours)
            what = "a date-time needs its offset" if "T" in text.upper() else "a date alone"
            raise ValueError(f"--expires: {what}: {_EXPIRES_FORMS}")
        at = when.timestamp()
    try:
        shown = clock.iso(at)
    except (OverflowError, OSError, ValueError):
        # (year 1 with an offset east of UTC, or past 9999)
        far = "in the past" if at < now else "too far in the future (leave it out: no expiry)"
        raise ValueError(f"--expires: {far}") from None
    if at <= now:
        raise ValueError(f"--expires: {shown} is not in the future (now {clock.iso(now)})")
    return at


class TokenRefused(ValueError):
    """The token asked for is well formed, but the records say no (a customer that does
    not exist, or is not a RESELLER): ``acsd token create`` exits 1 for it, not 2."""


async def create_token(
    store: Store,
    role: str,
    *,
    customer: str | None = None,
    name: str = "",
    apn_account: str | None = None,
    expires: float | None = None,
) -> tuple[str, TokenRecord]:
    """Returns the token (to show once) and its stored record; audited as made with
    ``acsd token create`` (tokens are made on the server only, never over the API).

    ``apn_account`` scopes the token to one APN API account (seed 003 foreign key); an
    OWNER or MANAGER token may have it instead of a customer (it then sees no customer).
    ``expires`` (POSIX seconds, see :func:`parse_expires`): when it stops working."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    _check_name(name)
    if customer is not None:  # ids are accepted in any case, as by the API and `device`
        customer = normal_id(customer)
    if role == "ADMIN" and customer is not None:
        raise ValueError("an ADMIN token sees every customer: leave out --customer")
    if apn_account is not None:
        if role == "ADMIN":
            raise ValueError("an ADMIN token manages every APN account already")
        if (problem := key_problem(apn_account)) is not None:
            raise ValueError(f"--apn-account: {problem}")
    apn_only = apn_account is not None and role in ("OWNER", "MANAGER")
    if role != "ADMIN" and not customer and not apn_only:
        article = "an" if role == "OWNER" else "a"
        # (the README's APN example makes an OWNER token with --apn-account alone)
        other = "" if role == "RESELLER" else " (or --apn-account KEY, for the APN API)"
        raise ValueError(
            f"{article} {role} token is bound to a customer: give --customer ID{other}"
        )
    if customer is not None:
        found = await store.get_customer(customer)
        if found is None:
            raise TokenRefused(f"no customer {customer}")
        if role == "RESELLER" and found.type != "RESELLER":
            raise TokenRefused(f"customer {customer} is not a RESELLER")
    token = new_token()
    record = TokenRecord(
        id=new_id(),
        hash=hash_token(token),
        role=role,
        customer=customer,
        name=name,
        created=clock.now(),
        apn_account=apn_account,
        expires=expires,
    )
    after = {"role": role, "customer": record.customer, "name": name, "apnAccount": apn_account,
             "expires": clock.iso(expires) if expires is not None else None}  # fmt: skip
    entry = cli_record("token.create", "token", record.id, customer=record.customer, after=after)
    return token, await store.create_token(record, audit=entry)


#: a token's name is checked as a device's: `token list` prints it, and an escape
#: sequence or a line break there would reach the operator's terminal
_NAME = TypeAdapter(DeviceName)


def _check_name(name: str) -> None:
    try:
        _NAME.validate_python(name)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ValueError(f"--name: {message}") from None


@dataclass(slots=True)
class Caller:
    token: TokenRecord
    #: customer ids this caller may see; None = all (ADMIN)
    tenancy: set[str] | None

    @property
    def role(self) -> str:
        return self.token.role

    @property
    def is_admin(self) -> bool:
        return self.token.role == "ADMIN"

    def may_see(self, customer: str | None) -> bool:
        if self.tenancy is None:
            return True
        return customer is not None and customer in self.tenancy

    def require(self, customer: str | None) -> None:
        if not self.may_see(customer):
            raise access_denied()

    async def customer(self, store: Store, customer_id: str) -> CustomerRecord:
        """The customer a request names, if this caller may act on it.

        A caller bound to a tenancy is refused one that does not exist as one of another
        tenant's (403): otherwise the two answers would tell it which ids exist. ADMIN, who
        may act on every customer, is told ``404 customer``.
        """
        record = await store.get_customer(customer_id) if is_id(customer_id) else None
        if record is None:
            if self.tenancy is not None:
                raise access_denied()
            raise not_found("customer", "Customer not found")
        self.require(record.id)
        return record

    def require_admin(self) -> None:
        if not self.is_admin:
            raise access_denied("Insufficient access level: ADMIN only")


#: seconds between two api.auth_failed lines of one client address
TOKEN_REFUSED_LOG_INTERVAL = 10.0
_TOKEN_REFUSED_TOLD = Throttle(TOKEN_REFUSED_LOG_INTERVAL)


def _token_refused(request: web.Request, reason: str, token_id: str | None = None) -> None:
    """A token that is unknown, revoked or expired: counted, and said once per address a
    while (a client guessing tokens must not choose how much acsd logs). Never the token."""
    if (count := request.app.get(TOKEN_REFUSED)) is not None:
        count()
    remote = client_address(request.remote)
    # (an IPv6 client by its /64: one host holds all of it and would get a line per address)
    # (the id of an expired token says whose it was; it is no secret, as in access lines)
    extra = {"token_id": token_id} if token_id else {}
    _TOKEN_REFUSED_TOLD.tell(
        counted_as(remote), log, "warning", "api.auth_failed", remote=remote, reason=reason, **extra
    )


async def authenticate(request: web.Request, store: Store) -> Caller:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized(
            "send Authorization: Bearer <token> (create one with `acsd token create`)"
        )
    record = await store.find_token(hash_token(token.strip()))
    if record is None or record.expired(clock.now()):
        # One answer for the three: the log line tells the operator which it was.
        if record is None:
            _token_refused(request, "unknown or revoked token")
        else:
            _token_refused(request, "expired token", record.id)
        raise unauthorized("unknown, revoked or expired token", error="invalid_token")
    if record.role == "ADMIN":
        return Caller(record, None)
    if record.customer is None:
        return Caller(record, set())  # scoped to an APN account only: no customer's records
    if record.role == "RESELLER":
        return Caller(record, await store.customer_tree(record.customer))
    return Caller(record, {record.customer})
