"""An HTTP client for the console's forms in tests: keeps cookies as a browser does,
logs in with HTTP Basic credentials when given, and reads a form's CSRF token from a
page."""

from __future__ import annotations

import base64
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT_S = 30.0


class Browser:
    """An HTTP client keeping cookies, as a browser does."""

    def __init__(self, base: str, login: tuple[str, str] | None = None) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        if login is not None:
            token = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
            self.opener.addheaders.append(("Authorization", f"Basic {token}"))

    def request(self, path: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
        """(status, body, final URL path) after following redirects."""
        data = None if form is None else urllib.parse.urlencode(form).encode()
        try:
            with self.opener.open(self.base + path, data=data, timeout=TIMEOUT_S) as response:
                final = urllib.parse.urlsplit(response.geturl())
                return response.status, response.read().decode(), final.path
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), path

    def token(self, path: str) -> str:
        status, body, _ = self.request(path)
        assert status == 200
        match = re.search(r'name="csrf" value="([0-9a-f]+)"', body)
        assert match is not None, "no form with a token"
        return match.group(1)
