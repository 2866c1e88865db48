import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Observation(_message.Message):
    __slots__ = ("name", "value", "status", "comment", "source", "known_from", "known_until", "deleted")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[Observation.Status]
        STATUS_NORMAL: _ClassVar[Observation.Status]
        STATUS_BREAK: _ClassVar[Observation.Status]
        STATUS_DEFINITION_DIFFERS: _ClassVar[Observation.Status]
        STATUS_ESTIMATED: _ClassVar[Observation.Status]
        STATUS_FORECAST: _ClassVar[Observation.Status]
        STATUS_EXPERIMENTAL: _ClassVar[Observation.Status]
        STATUS_MISSING_HOLIDAY: _ClassVar[Observation.Status]
        STATUS_IMPUTED: _ClassVar[Observation.Status]
        STATUS_MISSING_NOT_COLLECTED: _ClassVar[Observation.Status]
        STATUS_MISSING_CANNOT_EXIST: _ClassVar[Observation.Status]
        STATUS_NOT_SIGNIFICANT: _ClassVar[Observation.Status]
        STATUS_MISSING: _ClassVar[Observation.Status]
        STATUS_PROVISIONAL: _ClassVar[Observation.Status]
        STATUS_MISSING_SUPPRESSED: _ClassVar[Observation.Status]
        STATUS_STRIKE: _ClassVar[Observation.Status]
        STATUS_LOW_RELIABILITY: _ClassVar[Observation.Status]
        STATUS_UNVALIDATED: _ClassVar[Observation.Status]
    STATUS_UNSPECIFIED: Observation.Status
    STATUS_NORMAL: Observation.Status
    STATUS_BREAK: Observation.Status
    STATUS_DEFINITION_DIFFERS: Observation.Status
    STATUS_ESTIMATED: Observation.Status
    STATUS_FORECAST: Observation.Status
    STATUS_EXPERIMENTAL: Observation.Status
    STATUS_MISSING_HOLIDAY: Observation.Status
    STATUS_IMPUTED: Observation.Status
    STATUS_MISSING_NOT_COLLECTED: Observation.Status
    STATUS_MISSING_CANNOT_EXIST: Observation.Status
    STATUS_NOT_SIGNIFICANT: Observation.Status
    STATUS_MISSING: Observation.Status
    STATUS_PROVISIONAL: Observation.Status
    STATUS_MISSING_SUPPRESSED: Observation.Status
    STATUS_STRIKE: Observation.Status
    STATUS_LOW_RELIABILITY: Observation.Status
    STATUS_UNVALIDATED: Observation.Status
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FROM_FIELD_NUMBER: _ClassVar[int]
    KNOWN_UNTIL_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    status: Observation.Status
    comment: str
    source: str
    known_from: _timestamp_pb2.Timestamp
    known_until: _timestamp_pb2.Timestamp
    deleted: bool
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ..., status: _Optional[_Union[Observation.Status, str]] = ..., comment: _Optional[str] = ..., source: _Optional[str] = ..., known_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., known_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deleted: _Optional[bool] = ...) -> None: ...
