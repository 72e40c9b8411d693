"""OpenTelemetry for agentstore: stored runs as GenAI spans, exported or live.

```python
from agentstore.integrations import otel

await otel.export(store, session.id, tracer_provider)      # one stored session
store.add_append_listener(otel.live_listener(tracer_provider))  # spans as events arrive
```

`agentstore.open(..., tracer_provider=tp)` registers the live listener for you, and
`agentstore otel export SESSION --endpoint URL` sends a session over OTLP/HTTP. The
attribute names are those of the GenAI semantic conventions, pinned in
`agentstore.integrations.otel.conventions`.

Needs `pip install 'agentstore[otel]'`.
"""

from __future__ import annotations

try:
    import opentelemetry.sdk  # noqa: F401  (the SDK is what users pass a provider of)
    from opentelemetry import trace as _trace  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "the OpenTelemetry integration needs the OpenTelemetry SDK: pip install 'agentstore[otel]'"
    ) from exc

from agentstore.integrations.otel._export import export
from agentstore.integrations.otel._live import live_listener, session_trace_context
from agentstore.integrations.otel.conventions import SCHEMA_URL, SEMCONV_VERSION

__all__ = ["SCHEMA_URL", "SEMCONV_VERSION", "export", "live_listener", "session_trace_context"]
