"""Service URIs as a server or the lab may show them: passwords never printed, logged or put in an error message."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

HIDDEN = "***"


def passwords(uris: str | list[str]) -> set[str]:
    """The passwords in `uris` (one URI, several space-separated, or a list), as written and decoded."""
    found: set[str] = set()
    for uri in uris.split() if isinstance(uris, str) else uris:
        try:
            password = urlsplit(uri).password
        except ValueError:  # an unparsable URI: nothing known to hide
            continue
        if password:
            found |= {password, unquote(password)}
    return found


def hidden(text: str, uris: str | list[str]) -> str:
    """`text` with every password of `uris` replaced by ***."""
    for secret in sorted(passwords(uris), key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text


def shown(uri: str) -> str:
    """A URI (or several, space-separated) fit to print: its password replaced by ***."""
    return hidden(uri, uri)
