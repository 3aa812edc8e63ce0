"""The WHERE clauses of the device and internet account lists."""

from __future__ import annotations

import re
from typing import Any

from acsd import clock
from acsd.macs import mac_fragment
from acsd.store.base import (
    DeviceQuery,
    InternetAccountQuery,
)
from acsd.store.records import (
    DEVICE_STATE,
    INTERNET_STATE,
    dumps,
    search_fold,
    shown_as,
)
from acsd.store.schema import JOB_STATE_SQL

_LIKE_SPECIAL = re.compile(r"([\\%_])")

# Online as acsd.provisioning.status.is_online computes it: a session within twice the
# periodic interval (the default one when unknown or not positive) plus grace. Each
# bounded by 9e999 (infinity) as well: SQLite sorts text and BLOBs after every number, so
# a value edited by hand into another type (shown as none) passed "> 0" and listed a
# router shown offline as online; the bound keeps them out at no cost (a typeof() per
# row doubled the filter's time). (An interval of a fraction, read as none, still counts.)
_ONLINE_SQL = (
    "last_inform BETWEEN :now - (2 * (CASE WHEN periodic_interval BETWEEN 1 AND 9e999"
    " THEN periodic_interval ELSE :default_interval END) + :grace) AND 9e999"
)

# The job a device shows, as the index devices_job_state holds it (written alike, so that
# SQLite answers a job= list from that index rather than by parsing every row's memory).
_JOB_SQL = f"{JOB_STATE_SQL} = :job"
# ...and a change no session has taken up yet, which the device shows as a PENDING job of
# its revision (acsd.device_view.waiting_job): no job of the revision stored, the record
# PROVISIONING. Spelt with the index's expression too, so that both halves of the OR are
# answered from devices_job_state (state is one of its columns; revision is read only for
# the rows that pass, and a value edited by hand into text is none, as the record shows it).
_WAITING_SQL = (
    f"({JOB_STATE_SQL} IS NULL AND state = 'PROVISIONING'"
    " AND typeof(revision) = 'integer' AND revision > 0)"
)


def fold(value: Any) -> str | None:
    """``acsd_fold(x)`` in SQL: :func:`search_fold` (SQLite's lower() and LIKE know ASCII,
    and nothing of composed and decomposed accents)."""
    return search_fold(value) if isinstance(value, str) else None


def _customer_filters(
    query: DeviceQuery | InternetAccountQuery,
) -> tuple[list[str], dict[str, Any]]:
    """The scoping that every list shares: the customers a reseller's token sees, and the
    one customer asked for."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if query.customers is not None:
        clauses.append("customer IN (SELECT value FROM json_each(:customers))")
        params["customers"] = dumps(sorted(query.customers))
    if query.customer is not None:
        clauses.append("customer = :customer")
        params["customer"] = query.customer
    return clauses, params


def device_filters(query: DeviceQuery) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of :meth:`SqliteStore.query_devices` and its named parameters."""
    clauses, params = _customer_filters(query)
    if query.state is not None:
        clauses.append(shown_as(DEVICE_STATE, query.state, ":state"))
        params["state"] = query.state
    if query.online is not None:
        # never-seen devices (last_inform NULL) are offline
        clauses.append(_ONLINE_SQL if query.online else f"NOT coalesce({_ONLINE_SQL}, 0)")
        params["now"] = query.now or clock.now()
        params["default_interval"] = query.default_interval
        params["grace"] = query.grace
    if query.job is not None:
        clauses.append(f"({_JOB_SQL} OR {_WAITING_SQL})" if query.job == "PENDING" else _JOB_SQL)
        params["job"] = query.job
    q = (query.q or "").strip()
    if q:
        columns = ("name", "serial_number", "notes")
        params["fold"] = search_fold(q)
        if q.isascii():
            # LIKE is case-insensitive for ASCII; the pattern matches q literally. A text
            # that is not all ASCII is folded too ("strasse" finds "Straße", as "straße"
            # does), and only such a text: the fold is a Python call per row.
            params["like"] = "%" + _LIKE_SPECIAL.sub(r"\\\1", q) + "%"
            terms = [
                f"({c} LIKE :like ESCAPE '\\' OR ({c} GLOB :wide"
                f" AND instr(acsd_fold({c}), :fold) > 0))"
                for c in columns
            ]
            params["wide"] = "*[^\x01-\x7f]*"
        else:
            terms = [f"instr(acsd_fold({c}), :fold) > 0" for c in columns]
        mac = mac_fragment(q)
        if mac is not None:
            terms.append("instr(mac_key, :mac) > 0")
            params["mac"] = mac
        clauses.append(f"({' OR '.join(terms)})")
    return (" AND ".join(clauses) or "1"), params


# An account is ACTIVE from its start date on, whether or not the sweep has stored it yet;
# one without a start date (or one of another type: it reads as none) stays CONFIRMED.
_INTERNET_ACCOUNT_STATES = {
    "ORDERED": shown_as(INTERNET_STATE, "ORDERED", "'ORDERED'"),
    "CONFIRMED": "(state = 'CONFIRMED' AND NOT coalesce(start_date <= :now, 0))",
    "ACTIVE": "(state = 'ACTIVE' OR (state = 'CONFIRMED' AND start_date <= :now))",
    "ENDED": "state = 'ENDED'",
}


def internet_account_filters(query: InternetAccountQuery) -> tuple[str, dict[str, Any]]:
    clauses, params = _customer_filters(query)
    if query.device is not None:
        clauses.append("device = :device")
        params["device"] = query.device
    if query.state is not None:
        clauses.append(_INTERNET_ACCOUNT_STATES.get(query.state, "0"))
        params["now"] = query.now or clock.now()
    return (" AND ".join(clauses) or "1"), params
