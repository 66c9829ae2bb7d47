"""Exceptions raised by the Segflow client.

Every exception that concerns one request names its request id, and a service's
error answer carries the stable ``segflow.v1.ErrorCode`` (name and number) together
with the service's readable message.
"""

from __future__ import annotations

from typing import Iterable, Optional

from ._proto import segflow_pb2 as pb


class SegflowError(Exception):
    """Base class of every error the client raises."""


class SegflowRequestError(SegflowError):
    """A service answered a request with an error result (``MaskResult.error``).

    Attributes:
        request_id: the id of the request the service refused (the image request's id
            when the image itself was refused, e.g. ``INVALID_IMAGE``).
        code: the ``segflow.v1.ErrorCode`` number.
        code_name: its name, e.g. ``"INVALID_PROMPT"``.
        service_message: the service's message, unchanged.
    """

    def __init__(self, request_id: str, code: int, service_message: str, what: str = "request") -> None:
        self.request_id = request_id
        self.code = int(code)
        self.code_name = error_code_name(code)
        self.service_message = service_message
        super().__init__(f"{what} {request_id} failed with {self.code_name} ({self.code}): {service_message}")


class SegflowTimeoutError(SegflowError):
    """No answer arrived for some requests within the caller's timeout.

    Attributes:
        request_ids: the ids still unanswered, sorted.
        timeout: the bound that ran out, in seconds.
    """

    def __init__(self, request_ids: Iterable[str], timeout: float) -> None:
        self.request_ids = sorted(request_ids)
        self.timeout = timeout
        super().__init__(f"no answer within {timeout:g} s for request(s) {', '.join(self.request_ids)}")


class SegflowReplyError(SegflowError):
    """A reply addressed to one of our requests could not be read (not a MaskResult,
    or a mask whose run-length encoding contradicts its declared size or area).
    Never dropped silently: the wait fails with this error."""

    def __init__(self, request_id: str, reason: str) -> None:
        self.request_id = request_id
        self.reason = reason
        super().__init__(f"the reply to request {request_id} cannot be read: {reason}")


class SegflowKafkaError(SegflowError):
    """Kafka refused or failed to deliver a record, or the reply topic is unusable.

    Attributes:
        request_id: the request whose record failed, when there is one.
        kafka_error: the underlying ``confluent_kafka.KafkaError`` (or None).
    """

    def __init__(self, message: str, request_id: Optional[str] = None, kafka_error: object = None) -> None:
        self.request_id = request_id
        self.kafka_error = kafka_error
        prefix = f"request {request_id}: " if request_id else ""
        super().__init__(prefix + message + (f": {kafka_error}" if kafka_error is not None else ""))


def error_code_name(code: int) -> str:
    """The ``segflow.v1.ErrorCode`` name of ``code``; unknown numbers (a newer service)
    are shown as ``ERROR_CODE_<n>`` rather than failing."""
    try:
        return pb.ErrorCode.Name(int(code))
    except ValueError:
        return f"ERROR_CODE_{int(code)}"
