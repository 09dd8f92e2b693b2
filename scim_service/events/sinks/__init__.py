"""Event sinks: where the publisher hands claimed outbox events (see `base.Sink`).

Each sink module imports its client library (aiohttp, nats-py) only when imported itself; import
the one you configure, e.g. `from scim_service.events.sinks.webhook import WebhookSink`.
"""

from scim_service.events.sinks.base import Outbound, Outcome, Sink

__all__ = ["Outbound", "Outcome", "Sink"]
