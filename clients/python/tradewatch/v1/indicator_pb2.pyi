import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from tradewatch.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Indicator(_message.Message):
    __slots__ = ("name", "title", "description", "unit", "unit_multiplier", "frequency", "flow", "service_category", "region", "dimensions", "aggregation", "year_to_date", "direction", "source_agency", "create_time", "update_time", "etag")
    class Flow(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        FLOW_UNSPECIFIED: _ClassVar[Indicator.Flow]
        FLOW_EXPORT: _ClassVar[Indicator.Flow]
        FLOW_IMPORT: _ClassVar[Indicator.Flow]
        FLOW_TOTAL: _ClassVar[Indicator.Flow]
        FLOW_BALANCE: _ClassVar[Indicator.Flow]
        FLOW_NONE: _ClassVar[Indicator.Flow]
    FLOW_UNSPECIFIED: Indicator.Flow
    FLOW_EXPORT: Indicator.Flow
    FLOW_IMPORT: Indicator.Flow
    FLOW_TOTAL: Indicator.Flow
    FLOW_BALANCE: Indicator.Flow
    FLOW_NONE: Indicator.Flow
    class Aggregation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        AGGREGATION_UNSPECIFIED: _ClassVar[Indicator.Aggregation]
        AGGREGATION_SUM: _ClassVar[Indicator.Aggregation]
        AGGREGATION_AVERAGE: _ClassVar[Indicator.Aggregation]
        AGGREGATION_END_OF_PERIOD: _ClassVar[Indicator.Aggregation]
    AGGREGATION_UNSPECIFIED: Indicator.Aggregation
    AGGREGATION_SUM: Indicator.Aggregation
    AGGREGATION_AVERAGE: Indicator.Aggregation
    AGGREGATION_END_OF_PERIOD: Indicator.Aggregation
    class DimensionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    UNIT_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    SERVICE_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    AGGREGATION_FIELD_NUMBER: _ClassVar[int]
    YEAR_TO_DATE_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_AGENCY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    title: str
    description: str
    unit: str
    unit_multiplier: int
    frequency: _common_pb2.Frequency
    flow: Indicator.Flow
    service_category: str
    region: str
    dimensions: _containers.ScalarMap[str, str]
    aggregation: Indicator.Aggregation
    year_to_date: bool
    direction: _common_pb2.Direction
    source_agency: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., unit: _Optional[str] = ..., unit_multiplier: _Optional[int] = ..., frequency: _Optional[_Union[_common_pb2.Frequency, str]] = ..., flow: _Optional[_Union[Indicator.Flow, str]] = ..., service_category: _Optional[str] = ..., region: _Optional[str] = ..., dimensions: _Optional[_Mapping[str, str]] = ..., aggregation: _Optional[_Union[Indicator.Aggregation, str]] = ..., year_to_date: _Optional[bool] = ..., direction: _Optional[_Union[_common_pb2.Direction, str]] = ..., source_agency: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...
