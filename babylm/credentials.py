"""Credentials never leave memory: one function hides them in every message and every written file.

:func:`redact` is applied by the console handler (every log line and every one-line error), by
:func:`babylm.config.save` (every ``*_config.json``) and by the writers of records that hold a URL
(``*.download.json``). It hides

* the userinfo of a URL: ``https://user:PW@host`` -> ``https://user:***@host``; an http(s) URL
  with a user name alone (git hosts take a token as the user name) -> ``https://***@host``;
* the value of a query parameter named like a credential (``?token=``, ``access_token``, ``api_key``,
  ``secret``, ``password``, ``sig``, ``X-Amz-Signature`` ...) -> ``?token=***``;
* any string given in ``secrets`` (a token read from the environment).
"""

from __future__ import annotations

import base64
import re
import urllib.parse

# scheme://userinfo@ in any text: a URL's credentials (greedy up to the host: a password may hold '@')
_URL_CREDENTIALS = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)([^\s/?#'\"]+)@")
# name=value after ? & or ; whose name holds a credential word (access_token, api_key, X-Amz-Signature ...)
_SECRET_PARAM = re.compile(r"([?&;][^=&#\s'\"?]*(?:token|key|secret|passw|pwd|sig|auth|credential)[^=&#\s'\"]*=)"
                           r"([^&#\s'\"()<>\[\]]+)", re.IGNORECASE)  # a value ends where a sentence's brackets do
HIDDEN = "***"


def redact(text: str, *secrets: str) -> str:
    """``text`` with every credential of the forms above replaced by ``***``."""
    def hide(m: re.Match) -> str:
        scheme, userinfo = m.group(1), m.group(2)
        user, has_password, _ = userinfo.partition(":")
        if has_password:
            return f"{scheme}{user}:{HIDDEN}@"
        return f"{scheme}{HIDDEN}@" if scheme.lower() in ("http://", "https://") else m.group(0)

    text = _URL_CREDENTIALS.sub(hide, str(text))
    text = _SECRET_PARAM.sub(lambda m: m.group(1) + HIDDEN, text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, HIDDEN)
    return text


def redact_values(obj):
    """``obj`` (JSON-like: dicts, lists, strings) with :func:`redact` applied to every string in it."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: redact_values(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_values(v) for v in obj]
    return obj


def split_userinfo(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without its ``user:password@`` and the HTTP basic-auth header that carries them instead
    (urllib sends no credentials from a URL; it takes ``user:pw@host`` for a host with a bad port)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, {}
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    pair = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}".encode()
    plain = urllib.parse.urlunsplit(parts._replace(netloc=host))
    return plain, {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
