"""Paths as the seeds' clients write them: one trailing slash, and any case of a route's
fixed words, name the route (``/v1/Accounts/ACME/networks/fleet/devices/apns/`` is
``/v1/accounts/ACME/networks/fleet/devices/apns``).

Why: the APN API's model (seed 003, Passbridge) is an ASP.NET Web API service, whose routes
match their literal segments in any case and with or without a trailing slash; the seed-000
and seed-002 service answers the same under Express's defaults. Clients written against
those send either (a generated client's base URL ending in ``/``, a hand-typed
``/V1/Accounts``), and a 404 for them is a support call. The parameters (ids, account and
network keys, a CLI) keep their case: ``ACME`` and ``acme`` are two accounts.

The request is answered where it is, never redirected: a 301/308 to the other spelling
loses a POST's body with the many clients that do not follow a redirect of a POST.

How: :func:`forgive_paths` adds a resource that aiohttp consults last (its index key is
``/``, which the router reaches after every more specific one), so an exact match never
pays for it; a path that matched nothing is spelled as the route it names and routed again.
An application's sub-applications each need their own (the router hands a path under a
sub-application's prefix to it and takes its 404 as the answer): call it on each before
``add_subapp``, and on the main application after its last route.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aiohttp import web
from yarl import URL

if TYPE_CHECKING:
    from aiohttp.web_urldispatcher import _Resolve

#: a route's segments: its literal words as written, None for a parameter
_Template = tuple[str | None, ...]


def _segments(canonical: str) -> _Template | None:
    """A route's path as segments, or None for one this module does not forgive (a segment
    mixing a parameter with text, ``{name}.json``: none of the API's has one)."""
    out: list[str | None] = []
    for part in canonical.split("/")[1:]:
        if part.startswith("{") and part.endswith("}") and part.count("{") == 1:
            out.append(None)
        elif "{" in part or "}" in part:
            return None
        else:
            out.append(part)
    return tuple(out)


def _templates(router: web.UrlDispatcher) -> Iterator[_Template]:
    for resource in router.resources():
        if isinstance(resource, ForgivingPaths):
            continue
        if isinstance(resource, web.PrefixedSubAppResource):
            # (add_subapp() has already put the prefix on the sub-application's resources)
            yield from _templates(resource.get_info()["app"].router)
            continue
        if isinstance(resource, web.StaticResource):
            continue
        if (template := _segments(resource.canonical)) is not None:
            yield template


def _same_word(sent: str, word: str) -> bool:
    # (percent-escapes decoded, as aiohttp matches an exact path: /network/%64evice is the
    # route; an escaped "/" decodes to no word)
    sent = unquote(sent, errors="replace") if "%" in sent else sent
    # ASCII only: a route's words are ASCII, and str.lower() of other letters would make a
    # word of them (U+212A, the Kelvin sign, lowers to "k")
    return sent.isascii() and sent.lower() == word.lower()


def spelled(raw_path: str, templates: Iterable[_Template]) -> str | None:
    """``raw_path`` (percent-encoded, as sent) spelled as the route it names: one trailing
    slash dropped, the route's words in its own case, parameters as sent. None when it names
    no route, or is spelled so already."""
    path = raw_path[:-1] if raw_path.endswith("/") and raw_path != "/" else raw_path
    sent = path.split("/")[1:]
    for template in templates:
        if len(template) != len(sent):
            continue
        if all(
            (part != "" if word is None else _same_word(part, word))
            for part, word in zip(sent, template, strict=True)
        ):
            pairs = zip(sent, template, strict=True)
            route = "/" + "/".join(part if word is None else word for part, word in pairs)
            return route if route != raw_path else None
    return None


class ForgivingPaths(web.AbstractResource):
    """The last resource of a router: a path that matched nothing, spelled as a route names
    it, routed again (see the module's description)."""

    def __init__(self, router: web.UrlDispatcher) -> None:
        super().__init__()
        self._router = router
        self._prefix = ""
        self._templates: tuple[_Template, ...] | None = None

    @property
    def canonical(self) -> str:
        return self._prefix or "/"

    def url_for(self, **kwargs: str) -> URL:
        raise RuntimeError("a forgiving path has no URL of its own")

    def add_prefix(self, prefix: str) -> None:
        # (add_subapp() calls it for every resource of the sub-application)
        self._prefix = prefix + self._prefix

    def get_info(self) -> dict[str, Any]:  # type: ignore[override]
        return {"forgiving": True}

    def raw_match(self, path: str) -> bool:
        return False

    def routes_of(self) -> tuple[_Template, ...]:
        # (read at the first request: the routes are all there by then, prefixed too)
        if self._templates is None:
            self._templates = tuple(_templates(self._router))
        return self._templates

    def spelled(self, request: web.BaseRequest) -> web.BaseRequest | None:
        """``request`` with its path spelled as the route it names, or None."""
        route = spelled(request.rel_url.raw_path, self.routes_of())
        if route is None:
            return None
        query = request.rel_url.raw_query_string
        # (only ever called before the body is read: routing, or an answer to a path that
        # named no route)
        return request.clone(rel_url=URL.build(path=route, query_string=query, encoded=True))

    async def resolve(self, request: web.Request) -> _Resolve:
        again = self.spelled(request)
        if again is None:
            return None, set()
        match = await self._router.resolve(again)  # type: ignore[arg-type]
        exc = match.http_exception
        if exc is None or match.apps:
            # (a sub-application's answer, its 405 included: its own middlewares answer it)
            return match, set()
        if isinstance(exc, web.HTTPMethodNotAllowed):
            return None, set(exc.allowed_methods)
        return None, set()

    def __len__(self) -> int:
        return 0

    def __iter__(self) -> Iterator[web.AbstractRoute]:
        return iter(())


def forgive_paths(app: web.Application) -> None:
    """Make ``app`` answer a path with a trailing slash, or with its route's words in
    another case, as the route (its sub-applications each need their own call)."""
    app.router.register_resource(ForgivingPaths(app.router))


def spelled_request(request: web.Request) -> web.BaseRequest:
    """``request`` with its path spelled as the route of its application it names (itself
    when it names none, or is spelled so), for an answer that looks up the route by path."""
    for resource in request.app.router.resources():
        if isinstance(resource, ForgivingPaths):
            try:
                return resource.spelled(request) or request
            except RuntimeError:  # (its body read: aiohttp clones no such request)
                return request
    return request


__all__ = ["ForgivingPaths", "forgive_paths", "spelled", "spelled_request"]
