import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from tradewatch.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Program(_message.Message):
    __slots__ = ("name", "title", "issuing_body", "adoption_date", "jurisdiction", "start_year", "end_year", "summary", "source_uri", "create_time", "update_time", "etag")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ISSUING_BODY_FIELD_NUMBER: _ClassVar[int]
    ADOPTION_DATE_FIELD_NUMBER: _ClassVar[int]
    JURISDICTION_FIELD_NUMBER: _ClassVar[int]
    START_YEAR_FIELD_NUMBER: _ClassVar[int]
    END_YEAR_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    title: str
    issuing_body: str
    adoption_date: str
    jurisdiction: str
    start_year: int
    end_year: int
    summary: str
    source_uri: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., title: _Optional[str] = ..., issuing_body: _Optional[str] = ..., adoption_date: _Optional[str] = ..., jurisdiction: _Optional[str] = ..., start_year: _Optional[int] = ..., end_year: _Optional[int] = ..., summary: _Optional[str] = ..., source_uri: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class Initiative(_message.Message):
    __slots__ = ("name", "parent_initiative", "title", "description", "lead_agency", "state", "start_date", "end_date", "tags", "indicators", "position", "create_time", "update_time", "etag")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Initiative.State]
        STATE_PLANNED: _ClassVar[Initiative.State]
        STATE_ACTIVE: _ClassVar[Initiative.State]
        STATE_COMPLETED: _ClassVar[Initiative.State]
        STATE_SUSPENDED: _ClassVar[Initiative.State]
        STATE_CANCELLED: _ClassVar[Initiative.State]
    STATE_UNSPECIFIED: Initiative.State
    STATE_PLANNED: Initiative.State
    STATE_ACTIVE: Initiative.State
    STATE_COMPLETED: Initiative.State
    STATE_SUSPENDED: Initiative.State
    STATE_CANCELLED: Initiative.State
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARENT_INITIATIVE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LEAD_AGENCY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    INDICATORS_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    parent_initiative: str
    title: str
    description: str
    lead_agency: str
    state: Initiative.State
    start_date: str
    end_date: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    indicators: _containers.RepeatedScalarFieldContainer[str]
    position: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., parent_initiative: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., lead_agency: _Optional[str] = ..., state: _Optional[_Union[Initiative.State, str]] = ..., start_date: _Optional[str] = ..., end_date: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., indicators: _Optional[_Iterable[str]] = ..., position: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class Target(_message.Message):
    __slots__ = ("name", "title", "description", "indicator", "initiative", "kind", "target_value", "unit_multiplier", "target_period", "baseline_value", "baseline_period", "direction", "create_time", "update_time", "etag")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[Target.Kind]
        KIND_LEVEL: _ClassVar[Target.Kind]
        KIND_GROWTH_RATE: _ClassVar[Target.Kind]
    KIND_UNSPECIFIED: Target.Kind
    KIND_LEVEL: Target.Kind
    KIND_GROWTH_RATE: Target.Kind
    NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INDICATOR_FIELD_NUMBER: _ClassVar[int]
    INITIATIVE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TARGET_VALUE_FIELD_NUMBER: _ClassVar[int]
    UNIT_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    TARGET_PERIOD_FIELD_NUMBER: _ClassVar[int]
    BASELINE_VALUE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_PERIOD_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    title: str
    description: str
    indicator: str
    initiative: str
    kind: Target.Kind
    target_value: str
    unit_multiplier: int
    target_period: str
    baseline_value: str
    baseline_period: str
    direction: _common_pb2.Direction
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., indicator: _Optional[str] = ..., initiative: _Optional[str] = ..., kind: _Optional[_Union[Target.Kind, str]] = ..., target_value: _Optional[str] = ..., unit_multiplier: _Optional[int] = ..., target_period: _Optional[str] = ..., baseline_value: _Optional[str] = ..., baseline_period: _Optional[str] = ..., direction: _Optional[_Union[_common_pb2.Direction, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...
