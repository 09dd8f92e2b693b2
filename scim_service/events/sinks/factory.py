"""The sinks the settings name, built once per publisher (each ready to `open`)."""

from __future__ import annotations

from scim_service.config import Settings
from scim_service.events.sinks.base import Sink

__all__ = ["build_sinks"]


def build_sinks(settings: Settings) -> dict[str, Sink]:
    """The sinks the settings name (`Settings.sinks`), ready to open. NATS and the log sink
    take batches of many resources, one `deliver` call per claim loop in flight
    (SCIM_PUBLISHER_WORKERS); webhooks send one request per call, SCIM_WEBHOOK_CONCURRENCY of
    them at most."""
    # Imported here: each sink module brings its client library (aiohttp, nats-py) with it.
    from scim_service.events.sinks.log import LogSink
    from scim_service.events.sinks.nats import NatsSink
    from scim_service.events.sinks.webhook import WebhookSink
    from scim_service.signing import Signer

    workers = max(1, settings.publisher_workers)
    sinks: dict[str, Sink] = {}
    for name in settings.sinks:
        if name == "webhook":
            assert settings.webhook_url is not None
            signer = (
                Signer(list(settings.webhook_secrets), settings.webhook_signing_key)
                if settings.webhook_secrets or settings.webhook_signing_key
                else None
            )
            sinks[name] = WebhookSink(
                settings.webhook_url,
                signer,
                timeout=settings.webhook_timeout,
                concurrency=settings.webhook_concurrency,
                batch_max=settings.webhook_batch_max,
            )
        elif name == "nats":
            assert settings.nats_url is not None
            sinks[name] = NatsSink(
                settings.nats_url,
                subject_prefix=settings.nats_subject_prefix,
                stream=settings.nats_stream,
                concurrency=workers,
            )
        else:
            sinks[name] = LogSink(concurrency=workers)
    return sinks
