"""Security headers: on every response, and a strict Content-Security-Policy for pages."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def content_security_policy(
    *, script_hashes: tuple[str, ...] = (), inline_styles: bool = False
) -> str:
    """Scripts and styles only from our own files (and inline scripts of the given SHA-256
    hashes, base64): no injected script can run. `inline_styles` is for pages whose library
    writes <style> elements at run time (ReDoc)."""
    scripts = " ".join(["'self'", *(f"'sha256-{digest}'" for digest in script_hashes)])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self'" + (" 'unsafe-inline'" if inline_styles else ""),
            "img-src 'self' data: blob:",
            "worker-src 'self' blob:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


PAGE_CSP = content_security_policy()

COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    header for header in COMMON_HEADERS if header[0] not in present
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
