"""The one-line header printed above a session's timeline, stats and step pager."""

from __future__ import annotations

from rich.text import Text

from agentstore import Session
from agentstore_cli.render import safe

__all__ = ["session_header"]


def session_header(info: Session) -> Text:
    """Return the one-line header of a session: name, id, labels."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if info.name:
        text.append_text(safe(info.name, "bold"))
    else:
        text.append("(unnamed)", style="dim")
    text.append("  ")
    text.append_text(safe(info.id, "cyan"))
    for key, value in sorted(info.labels.items()):
        text.append("  ")
        text.append_text(safe(f"{key}={value}", "dim"))
    return text
