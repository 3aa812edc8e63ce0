"""JSON answers of the operator API, encoded with orjson: a page of device views is tens
of KB, which the standard library's encoder takes about ten times as long to write."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, Protocol

import orjson
from aiohttp import web

_OPTIONS = orjson.OPT_NON_STR_KEYS
#: a lone surrogate: what aiohttp makes of a header byte that is not UTF-8
#: (surrogateescape), quoted back by an error's description; no UTF-8 can carry it
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def dumps(data: Any) -> bytes:
    """``data`` as UTF-8 JSON. NaN and infinities become null (they are no JSON), a lone
    surrogate U+FFFD; what orjson cannot write (an integer past 64 bits, a lone surrogate)
    goes through the standard library."""
    try:
        return orjson.dumps(data, option=_OPTIONS)
    except TypeError:
        return json.dumps(_finite(data), ensure_ascii=False).encode()


def _finite(data: Any) -> Any:
    """``data`` with null for NaN and the infinities, as orjson writes them, and U+FFFD for
    a lone surrogate (a client's non-UTF-8 header byte quoted in an error)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, str):
        return _SURROGATE.sub("\ufffd", data)
    if isinstance(data, Mapping):
        return {_finite(k): _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """What ``aiohttp.web.json_response`` answers, written by :func:`dumps`."""
    return web.Response(
        body=dumps(data),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


class _Page(Protocol):
    limit: int
    offset: int


def page_response(items: list[Any], total: int, query: _Page) -> web.Response:
    """A page of a list: its items, how many match in all, and the page asked for."""
    return json_response(
        {"items": items, "total": total, "limit": query.limit, "offset": query.offset}
    )
