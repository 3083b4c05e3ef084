"""Keep secrets out of every log line, including tracebacks."""

from __future__ import annotations

import base64
import logging
import typing as t

from typing_extensions import override

MASK = "***"


class SecretRedactor(logging.Filter):
    """Replaces every configured secret in a log record, its arguments and its traceback."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def install(secrets: list[str]) -> None:
    """Add the redactor to every handler of the root logger (where the SDK logs go)."""
    redactor = SecretRedactor(secrets)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, SecretRedactor) for f in handler.filters):
            handler.addFilter(redactor)


def config_secrets(config: t.Mapping[str, t.Any], names: t.Iterable[str]) -> list[str]:
    """The values to mask: each secret setting's, and the Basic auth header the key pair makes."""
    values = [str(config[name]) for name in names if config.get(name)]
    if config.get("access_key") and config.get("access_key_secret"):
        pair = f"{config['access_key']}:{config['access_key_secret']}"
        values.append(base64.b64encode(pair.encode()).decode())
    return values
