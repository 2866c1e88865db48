import datetime

from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from tradewatch.v1 import observation_pb2 as _observation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BatchCreateObservationsRequest(_message.Message):
    __slots__ = ("observations", "validate_only", "request_id")
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    observations: _containers.RepeatedCompositeFieldContainer[_observation_pb2.Observation]
    validate_only: bool
    request_id: str
    def __init__(self, observations: _Optional[_Iterable[_Union[_observation_pb2.Observation, _Mapping]]] = ..., validate_only: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class BatchCreateObservationsResponse(_message.Message):
    __slots__ = ("observations", "inserted", "revised", "unchanged")
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    INSERTED_FIELD_NUMBER: _ClassVar[int]
    REVISED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    observations: _containers.RepeatedCompositeFieldContainer[_observation_pb2.Observation]
    inserted: int
    revised: int
    unchanged: int
    def __init__(self, observations: _Optional[_Iterable[_Union[_observation_pb2.Observation, _Mapping]]] = ..., inserted: _Optional[int] = ..., revised: _Optional[int] = ..., unchanged: _Optional[int] = ...) -> None: ...

class ImportObservationsRequest(_message.Message):
    __slots__ = ("validate_only", "observations", "request_id")
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    validate_only: bool
    observations: _containers.RepeatedCompositeFieldContainer[_observation_pb2.Observation]
    request_id: str
    def __init__(self, validate_only: _Optional[bool] = ..., observations: _Optional[_Iterable[_Union[_observation_pb2.Observation, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ImportObservationsResponse(_message.Message):
    __slots__ = ("inserted", "revised", "unchanged", "validate_only", "commit_time")
    INSERTED_FIELD_NUMBER: _ClassVar[int]
    REVISED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    COMMIT_TIME_FIELD_NUMBER: _ClassVar[int]
    inserted: int
    revised: int
    unchanged: int
    validate_only: bool
    commit_time: _timestamp_pb2.Timestamp
    def __init__(self, inserted: _Optional[int] = ..., revised: _Optional[int] = ..., unchanged: _Optional[int] = ..., validate_only: _Optional[bool] = ..., commit_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetObservationRequest(_message.Message):
    __slots__ = ("name", "as_of")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    name: str
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListObservationsRequest(_message.Message):
    __slots__ = ("parent", "start_period", "end_period", "as_of", "updated_after", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    START_PERIOD_FIELD_NUMBER: _ClassVar[int]
    END_PERIOD_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    start_period: str
    end_period: str
    as_of: _timestamp_pb2.Timestamp
    updated_after: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., start_period: _Optional[str] = ..., end_period: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListObservationsResponse(_message.Message):
    __slots__ = ("observations", "next_page_token", "read_time")
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    READ_TIME_FIELD_NUMBER: _ClassVar[int]
    observations: _containers.RepeatedCompositeFieldContainer[_observation_pb2.Observation]
    next_page_token: str
    read_time: _timestamp_pb2.Timestamp
    def __init__(self, observations: _Optional[_Iterable[_Union[_observation_pb2.Observation, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., read_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListObservationRevisionsRequest(_message.Message):
    __slots__ = ("name", "page_size", "page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    page_size: int
    page_token: str
    def __init__(self, name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListObservationRevisionsResponse(_message.Message):
    __slots__ = ("revisions", "next_page_token")
    REVISIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    revisions: _containers.RepeatedCompositeFieldContainer[_observation_pb2.Observation]
    next_page_token: str
    def __init__(self, revisions: _Optional[_Iterable[_Union[_observation_pb2.Observation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteObservationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ExportObservationsRequest(_message.Message):
    __slots__ = ("indicators", "start_period", "end_period", "as_of", "format")
    class Format(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        FORMAT_UNSPECIFIED: _ClassVar[ExportObservationsRequest.Format]
        FORMAT_CSV: _ClassVar[ExportObservationsRequest.Format]
        FORMAT_SDMX_CSV: _ClassVar[ExportObservationsRequest.Format]
        FORMAT_MESSAGES: _ClassVar[ExportObservationsRequest.Format]
    FORMAT_UNSPECIFIED: ExportObservationsRequest.Format
    FORMAT_CSV: ExportObservationsRequest.Format
    FORMAT_SDMX_CSV: ExportObservationsRequest.Format
    FORMAT_MESSAGES: ExportObservationsRequest.Format
    INDICATORS_FIELD_NUMBER: _ClassVar[int]
    START_PERIOD_FIELD_NUMBER: _ClassVar[int]
    END_PERIOD_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    indicators: _containers.RepeatedScalarFieldContainer[str]
    start_period: str
    end_period: str
    as_of: _timestamp_pb2.Timestamp
    format: ExportObservationsRequest.Format
    def __init__(self, indicators: _Optional[_Iterable[str]] = ..., start_period: _Optional[str] = ..., end_period: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., format: _Optional[_Union[ExportObservationsRequest.Format, str]] = ...) -> None: ...

class ExportObservationsResponse(_message.Message):
    __slots__ = ("data", "observations", "row_count")
    DATA_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    data: str
    observations: _containers.RepeatedCompositeFieldContainer[_observation_pb2.Observation]
    row_count: int
    def __init__(self, data: _Optional[str] = ..., observations: _Optional[_Iterable[_Union[_observation_pb2.Observation, _Mapping]]] = ..., row_count: _Optional[int] = ...) -> None: ...

class WatchObservationsRequest(_message.Message):
    __slots__ = ("indicators", "start_cursor", "from_beginning")
    INDICATORS_FIELD_NUMBER: _ClassVar[int]
    START_CURSOR_FIELD_NUMBER: _ClassVar[int]
    FROM_BEGINNING_FIELD_NUMBER: _ClassVar[int]
    indicators: _containers.RepeatedScalarFieldContainer[str]
    start_cursor: str
    from_beginning: bool
    def __init__(self, indicators: _Optional[_Iterable[str]] = ..., start_cursor: _Optional[str] = ..., from_beginning: _Optional[bool] = ...) -> None: ...

class ObservationChange(_message.Message):
    __slots__ = ("kind", "observation")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[ObservationChange.Kind]
        KIND_CREATED: _ClassVar[ObservationChange.Kind]
        KIND_REVISED: _ClassVar[ObservationChange.Kind]
        KIND_DELETED: _ClassVar[ObservationChange.Kind]
    KIND_UNSPECIFIED: ObservationChange.Kind
    KIND_CREATED: ObservationChange.Kind
    KIND_REVISED: ObservationChange.Kind
    KIND_DELETED: ObservationChange.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    OBSERVATION_FIELD_NUMBER: _ClassVar[int]
    kind: ObservationChange.Kind
    observation: _observation_pb2.Observation
    def __init__(self, kind: _Optional[_Union[ObservationChange.Kind, str]] = ..., observation: _Optional[_Union[_observation_pb2.Observation, _Mapping]] = ...) -> None: ...

class WatchObservationsResponse(_message.Message):
    __slots__ = ("changes", "cursor")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[ObservationChange]
    cursor: str
    def __init__(self, changes: _Optional[_Iterable[_Union[ObservationChange, _Mapping]]] = ..., cursor: _Optional[str] = ...) -> None: ...
