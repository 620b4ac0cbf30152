"""Keep the Redis password out of everything Seawall prints."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

MASK = "***"
_URL_CREDENTIALS = re.compile(r"(?P<scheme>rediss?|unix)://(?P<user>[^:@/\s]*):(?P<pw>[^@\s]*)@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&\s]*)")


def redact_url(url: str | None) -> str:
    """``redis://user:secret@host`` -> ``redis://user:***@host``; also ``?password=``."""
    if not url:
        return ""
    masked = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}://{m['user']}:{MASK}@", url)
    return _QUERY_PASSWORD.sub(lambda m: f"{m[1]}{MASK}", masked)


def url_password(url: str | None) -> str | None:
    if not url:
        return None
    m = _URL_CREDENTIALS.search(url)
    if m and m["pw"]:
        return unquote(m["pw"])
    q = _QUERY_PASSWORD.search(url)
    return unquote(q[2]) if q else None


class Redactor:
    """Replaces known secrets (the URL's password, raw and URL-encoded) in text."""

    def __init__(self, *secrets: str | None) -> None:
        self._secrets: list[str] = []
        for s in secrets:
            self.add(s)

    def add(self, secret: str | None) -> None:
        if not secret:
            return
        for form in {secret, quote(secret, safe="")}:
            if form and form not in self._secrets:
                self._secrets.append(form)
        self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = redact_url(text)
        for s in self._secrets:
            text = text.replace(s, MASK)
        return text
