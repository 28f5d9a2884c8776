"""Secrets out of text that gets logged or stored: URL query values named like a credential
(``password=``, ``token=`` …) and the password of a URL's user info."""

from __future__ import annotations

import logging
import re

__all__ = ["RedactSecrets", "redact_secrets"]

# ?password=… / &token=… / &pwd=… (also URL-escaped once, as inside Kannel's dlr-url: %3Ftoken%3D…)
_QUERY_SECRET = re.compile(
    r"((?:[?&]|%3F|%26)(?:password|passwd|pwd|pass|token|write_token|access_token|secret|api_key|key)"
    r"(?:=|%3D))(?:(?!%26)[^&\s\"'<>])+",
    re.IGNORECASE,
)
# scheme://user:password@host
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]+@", re.IGNORECASE)


def redact_secrets(text: str) -> str:
    """``text`` with credential-like URL query values and user-info passwords as ``***``."""
    if "=" not in text and "%3D" not in text.upper() and "@" not in text:
        return text
    return _USERINFO.sub(r"\1***@", _QUERY_SECRET.sub(r"\1***", text))


class RedactSecrets(logging.Filter):
    """A handler filter: every record's message (and traceback) with :func:`redact_secrets` applied."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_secrets(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_secrets(record.exc_text)
        return True
