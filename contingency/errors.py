"""Errors raised by the contingency package.

    ContingencyError                      base; ``code`` is the audit error code
    ├── TopologyError                     inconsistent elements/areas/customers
    │   └── UnknownElementError           an element name the topology does not know (LookupError)
    ├── TemplateRenderError               a hotline script / SMS / banner template failed
    ├── StepError                         an incident step could not run (wraps the cause)
    └── SmsError                          an SMS sink could not deliver one message
        ├── SmsRetryableError             try again later (gateway down, disk busy)
        └── SmsPermanentError             never retry (bad number, rejected text)
"""

from __future__ import annotations

__all__ = [
    "ContingencyError",
    "SmsError",
    "SmsPermanentError",
    "SmsRetryableError",
    "StepError",
    "TemplateRenderError",
    "TopologyError",
    "UnknownElementError",
]


class ContingencyError(Exception):
    """Base of every contingency error; ``code`` is what the audit trail records."""

    code: str = "contingency_error"


class TopologyError(ContingencyError):
    """The elements, areas and customers do not form a consistent tree."""

    code = "topology"


class UnknownElementError(TopologyError, LookupError):
    """An element name that is not in the topology."""

    code = "unknown_element"

    def __init__(self, element: str) -> None:
        super().__init__(f"unknown element {element!r}")
        self.element = element


class TemplateRenderError(ContingencyError):
    """A Jinja2 template could not be found or rendered."""

    code = "template"

    def __init__(self, template: str, message: str) -> None:
        super().__init__(f"template {template!r}: {message}")
        self.template = template


class StepError(ContingencyError):
    """An incident step failed; carries the incident key and the step kind."""

    code = "step_failed"

    def __init__(self, incident_key: str, step: str, message: str, *, code: str = "") -> None:
        super().__init__(f"incident {incident_key!r} step {step}: {message}")
        self.incident_key = incident_key
        self.step = step
        if code:
            self.code = code


class SmsError(ContingencyError):
    """An SMS could not be delivered to one recipient."""

    code = "sms"

    def __init__(self, phone: str, message: str, *, message_id: str = "") -> None:
        super().__init__(f"sms {message_id or '?'} to {phone}: {message}")
        self.phone = phone
        self.message_id = message_id


class SmsRetryableError(SmsError):
    """A transient failure: the message stays queued and is retried."""

    code = "sms_retryable"


class SmsPermanentError(SmsError):
    """A final failure: the message is marked failed and never retried."""

    code = "sms_permanent"


class IncidentNotOpenError(ContingencyError):
    """The incident exists but is resolved or merged: it can no longer be changed."""
