"""A request-body size limit for the study server, as plain ASGI middleware.

A vote or a new session is a few hundred bytes of JSON, so every request body is limited (16 KiB by
default).  A ``Content-Length`` above the limit is answered 413 before a byte of the body is read; a
body without one (chunked) is counted as it streams in, and the request is answered 413 as soon as
the count passes the limit, so neither the reading nor the JSON parsing of a huge body happens.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException

MAX_BODY_BYTES = 16 * 1024


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit.  An HTTPException, so FastAPI's
    body reader passes it on and the app answers it with its own 413."""

    def __init__(self, limit: int):
        super().__init__(413, too_large(limit))


def too_large(limit: int) -> str:
    return f"request body too large (the limit is {limit} bytes; a vote is a few hundred)"


async def _reply(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with 413 (see the module docstring)."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES):
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    length = int(v)
                except ValueError:
                    return await _reply(send, 400, "the Content-Length header is not a number")
                if length > self.max_bytes:
                    return await _reply(send, 413, too_large(self.max_bytes))
        seen = 0
        started = False

        async def counted_receive():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return msg

        async def tracked_send(msg):
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await _reply(send, 413, too_large(self.max_bytes))
