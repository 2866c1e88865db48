import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from tradewatch.v1 import common_pb2 as _common_pb2
from tradewatch.v1 import indicator_pb2 as _indicator_pb2
from tradewatch.v1 import report_pb2 as _report_pb2
from tradewatch.v1 import program_pb2 as _program_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Transform(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSFORM_UNSPECIFIED: _ClassVar[Transform]
    TRANSFORM_LEVEL: _ClassVar[Transform]
    TRANSFORM_CHANGE: _ClassVar[Transform]
    TRANSFORM_CHANGE_YEAR_AGO: _ClassVar[Transform]
    TRANSFORM_PERCENT_CHANGE: _ClassVar[Transform]
    TRANSFORM_PERCENT_CHANGE_YEAR_AGO: _ClassVar[Transform]
    TRANSFORM_COMPOUND_ANNUAL_GROWTH: _ClassVar[Transform]
    TRANSFORM_YEAR_TO_DATE: _ClassVar[Transform]
    TRANSFORM_YEAR_TO_DATE_CHANGE_YEAR_AGO: _ClassVar[Transform]
    TRANSFORM_YEAR_TO_DATE_PERCENT_CHANGE_YEAR_AGO: _ClassVar[Transform]

class BreakdownDimension(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BREAKDOWN_DIMENSION_UNSPECIFIED: _ClassVar[BreakdownDimension]
    BREAKDOWN_DIMENSION_SERVICE_CATEGORY: _ClassVar[BreakdownDimension]
    BREAKDOWN_DIMENSION_FLOW: _ClassVar[BreakdownDimension]
    BREAKDOWN_DIMENSION_REGION: _ClassVar[BreakdownDimension]
    BREAKDOWN_DIMENSION_FREE: _ClassVar[BreakdownDimension]
TRANSFORM_UNSPECIFIED: Transform
TRANSFORM_LEVEL: Transform
TRANSFORM_CHANGE: Transform
TRANSFORM_CHANGE_YEAR_AGO: Transform
TRANSFORM_PERCENT_CHANGE: Transform
TRANSFORM_PERCENT_CHANGE_YEAR_AGO: Transform
TRANSFORM_COMPOUND_ANNUAL_GROWTH: Transform
TRANSFORM_YEAR_TO_DATE: Transform
TRANSFORM_YEAR_TO_DATE_CHANGE_YEAR_AGO: Transform
TRANSFORM_YEAR_TO_DATE_PERCENT_CHANGE_YEAR_AGO: Transform
BREAKDOWN_DIMENSION_UNSPECIFIED: BreakdownDimension
BREAKDOWN_DIMENSION_SERVICE_CATEGORY: BreakdownDimension
BREAKDOWN_DIMENSION_FLOW: BreakdownDimension
BREAKDOWN_DIMENSION_REGION: BreakdownDimension
BREAKDOWN_DIMENSION_FREE: BreakdownDimension

class QuerySeriesRequest(_message.Message):
    __slots__ = ("indicator", "start_period", "end_period", "frequency", "transform", "as_of", "conversion")
    INDICATOR_FIELD_NUMBER: _ClassVar[int]
    START_PERIOD_FIELD_NUMBER: _ClassVar[int]
    END_PERIOD_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FIELD_NUMBER: _ClassVar[int]
    indicator: str
    start_period: str
    end_period: str
    frequency: _common_pb2.Frequency
    transform: Transform
    as_of: _timestamp_pb2.Timestamp
    conversion: _report_pb2.CurrencyConversion
    def __init__(self, indicator: _Optional[str] = ..., start_period: _Optional[str] = ..., end_period: _Optional[str] = ..., frequency: _Optional[_Union[_common_pb2.Frequency, str]] = ..., transform: _Optional[_Union[Transform, str]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., conversion: _Optional[_Union[_report_pb2.CurrencyConversion, _Mapping]] = ...) -> None: ...

class SeriesPoint(_message.Message):
    __slots__ = ("period", "value", "rate", "partial", "parts", "expected_parts", "exchange_rate")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_PARTS_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_RATE_FIELD_NUMBER: _ClassVar[int]
    period: str
    value: str
    rate: float
    partial: bool
    parts: int
    expected_parts: int
    exchange_rate: _report_pb2.ExchangeRateUsed
    def __init__(self, period: _Optional[str] = ..., value: _Optional[str] = ..., rate: _Optional[float] = ..., partial: _Optional[bool] = ..., parts: _Optional[int] = ..., expected_parts: _Optional[int] = ..., exchange_rate: _Optional[_Union[_report_pb2.ExchangeRateUsed, _Mapping]] = ...) -> None: ...

class QuerySeriesResponse(_message.Message):
    __slots__ = ("indicator", "frequency", "transform", "unit", "unit_multiplier", "points", "as_of", "converted_from")
    INDICATOR_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    UNIT_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    CONVERTED_FROM_FIELD_NUMBER: _ClassVar[int]
    indicator: str
    frequency: _common_pb2.Frequency
    transform: Transform
    unit: str
    unit_multiplier: int
    points: _containers.RepeatedCompositeFieldContainer[SeriesPoint]
    as_of: _timestamp_pb2.Timestamp
    converted_from: str
    def __init__(self, indicator: _Optional[str] = ..., frequency: _Optional[_Union[_common_pb2.Frequency, str]] = ..., transform: _Optional[_Union[Transform, str]] = ..., unit: _Optional[str] = ..., unit_multiplier: _Optional[int] = ..., points: _Optional[_Iterable[_Union[SeriesPoint, _Mapping]]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., converted_from: _Optional[str] = ...) -> None: ...

class QueryBreakdownRequest(_message.Message):
    __slots__ = ("period", "region", "flow", "service_categories", "dimensions", "group_by", "dimension_key", "as_of", "conversion")
    class DimensionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    SERVICE_CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_KEY_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FIELD_NUMBER: _ClassVar[int]
    period: str
    region: str
    flow: _indicator_pb2.Indicator.Flow
    service_categories: _containers.RepeatedScalarFieldContainer[str]
    dimensions: _containers.ScalarMap[str, str]
    group_by: BreakdownDimension
    dimension_key: str
    as_of: _timestamp_pb2.Timestamp
    conversion: _report_pb2.CurrencyConversion
    def __init__(self, period: _Optional[str] = ..., region: _Optional[str] = ..., flow: _Optional[_Union[_indicator_pb2.Indicator.Flow, str]] = ..., service_categories: _Optional[_Iterable[str]] = ..., dimensions: _Optional[_Mapping[str, str]] = ..., group_by: _Optional[_Union[BreakdownDimension, str]] = ..., dimension_key: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., conversion: _Optional[_Union[_report_pb2.CurrencyConversion, _Mapping]] = ...) -> None: ...

class BreakdownGroup(_message.Message):
    __slots__ = ("key", "value", "share", "indicators")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    INDICATORS_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    share: float
    indicators: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ..., share: _Optional[float] = ..., indicators: _Optional[_Iterable[str]] = ...) -> None: ...

class QueryBreakdownResponse(_message.Message):
    __slots__ = ("period", "unit", "unit_multiplier", "groups", "total", "missing", "as_of", "non_additive", "exchange_rate")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    UNIT_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    NON_ADDITIVE_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_RATE_FIELD_NUMBER: _ClassVar[int]
    period: str
    unit: str
    unit_multiplier: int
    groups: _containers.RepeatedCompositeFieldContainer[BreakdownGroup]
    total: str
    missing: _containers.RepeatedScalarFieldContainer[str]
    as_of: _timestamp_pb2.Timestamp
    non_additive: bool
    exchange_rate: _report_pb2.ExchangeRateUsed
    def __init__(self, period: _Optional[str] = ..., unit: _Optional[str] = ..., unit_multiplier: _Optional[int] = ..., groups: _Optional[_Iterable[_Union[BreakdownGroup, _Mapping]]] = ..., total: _Optional[str] = ..., missing: _Optional[_Iterable[str]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., non_additive: _Optional[bool] = ..., exchange_rate: _Optional[_Union[_report_pb2.ExchangeRateUsed, _Mapping]] = ...) -> None: ...

class GetTargetProgressRequest(_message.Message):
    __slots__ = ("name", "as_of", "conversion")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    as_of: _timestamp_pb2.Timestamp
    conversion: _report_pb2.CurrencyConversion
    def __init__(self, name: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., conversion: _Optional[_Union[_report_pb2.CurrencyConversion, _Mapping]] = ...) -> None: ...

class ListTargetProgressRequest(_message.Message):
    __slots__ = ("parent", "as_of", "conversion")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FIELD_NUMBER: _ClassVar[int]
    parent: str
    as_of: _timestamp_pb2.Timestamp
    conversion: _report_pb2.CurrencyConversion
    def __init__(self, parent: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., conversion: _Optional[_Union[_report_pb2.CurrencyConversion, _Mapping]] = ...) -> None: ...

class ListTargetProgressResponse(_message.Message):
    __slots__ = ("progress",)
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    progress: _containers.RepeatedCompositeFieldContainer[_report_pb2.TargetProgress]
    def __init__(self, progress: _Optional[_Iterable[_Union[_report_pb2.TargetProgress, _Mapping]]] = ...) -> None: ...

class GetProgramScorecardRequest(_message.Message):
    __slots__ = ("name", "as_of")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    name: str
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProgramScorecard(_message.Message):
    __slots__ = ("program", "initiatives", "targets", "as_of")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    INITIATIVES_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    program: _program_pb2.Program
    initiatives: _containers.RepeatedCompositeFieldContainer[_report_pb2.InitiativeCard]
    targets: _containers.RepeatedCompositeFieldContainer[_report_pb2.TargetProgress]
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, program: _Optional[_Union[_program_pb2.Program, _Mapping]] = ..., initiatives: _Optional[_Iterable[_Union[_report_pb2.InitiativeCard, _Mapping]]] = ..., targets: _Optional[_Iterable[_Union[_report_pb2.TargetProgress, _Mapping]]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class QuerySeriesVintagesRequest(_message.Message):
    __slots__ = ("indicator", "start_period", "end_period", "frequency", "transform", "as_of")
    INDICATOR_FIELD_NUMBER: _ClassVar[int]
    START_PERIOD_FIELD_NUMBER: _ClassVar[int]
    END_PERIOD_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    indicator: str
    start_period: str
    end_period: str
    frequency: _common_pb2.Frequency
    transform: Transform
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, indicator: _Optional[str] = ..., start_period: _Optional[str] = ..., end_period: _Optional[str] = ..., frequency: _Optional[_Union[_common_pb2.Frequency, str]] = ..., transform: _Optional[_Union[Transform, str]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SeriesVintagePoint(_message.Message):
    __slots__ = ("period", "first_release_value", "first_release_rate", "first_release_time", "latest_value", "latest_rate", "latest_time", "revision", "revision_rate", "revised", "partial", "parts", "expected_parts")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    FIRST_RELEASE_VALUE_FIELD_NUMBER: _ClassVar[int]
    FIRST_RELEASE_RATE_FIELD_NUMBER: _ClassVar[int]
    FIRST_RELEASE_TIME_FIELD_NUMBER: _ClassVar[int]
    LATEST_VALUE_FIELD_NUMBER: _ClassVar[int]
    LATEST_RATE_FIELD_NUMBER: _ClassVar[int]
    LATEST_TIME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    REVISION_RATE_FIELD_NUMBER: _ClassVar[int]
    REVISED_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_PARTS_FIELD_NUMBER: _ClassVar[int]
    period: str
    first_release_value: str
    first_release_rate: float
    first_release_time: _timestamp_pb2.Timestamp
    latest_value: str
    latest_rate: float
    latest_time: _timestamp_pb2.Timestamp
    revision: str
    revision_rate: float
    revised: bool
    partial: bool
    parts: int
    expected_parts: int
    def __init__(self, period: _Optional[str] = ..., first_release_value: _Optional[str] = ..., first_release_rate: _Optional[float] = ..., first_release_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., latest_value: _Optional[str] = ..., latest_rate: _Optional[float] = ..., latest_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revision: _Optional[str] = ..., revision_rate: _Optional[float] = ..., revised: _Optional[bool] = ..., partial: _Optional[bool] = ..., parts: _Optional[int] = ..., expected_parts: _Optional[int] = ...) -> None: ...

class QuerySeriesVintagesResponse(_message.Message):
    __slots__ = ("indicator", "frequency", "transform", "unit", "unit_multiplier", "points", "vintage_count", "as_of")
    INDICATOR_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    UNIT_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    VINTAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    indicator: str
    frequency: _common_pb2.Frequency
    transform: Transform
    unit: str
    unit_multiplier: int
    points: _containers.RepeatedCompositeFieldContainer[SeriesVintagePoint]
    vintage_count: int
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, indicator: _Optional[str] = ..., frequency: _Optional[_Union[_common_pb2.Frequency, str]] = ..., transform: _Optional[_Union[Transform, str]] = ..., unit: _Optional[str] = ..., unit_multiplier: _Optional[int] = ..., points: _Optional[_Iterable[_Union[SeriesVintagePoint, _Mapping]]] = ..., vintage_count: _Optional[int] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListSeriesVintagesRequest(_message.Message):
    __slots__ = ("indicator", "start_period", "end_period", "as_of", "page_size", "page_token")
    INDICATOR_FIELD_NUMBER: _ClassVar[int]
    START_PERIOD_FIELD_NUMBER: _ClassVar[int]
    END_PERIOD_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    indicator: str
    start_period: str
    end_period: str
    as_of: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, indicator: _Optional[str] = ..., start_period: _Optional[str] = ..., end_period: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class SeriesVintage(_message.Message):
    __slots__ = ("time", "versions", "periods_changed", "periods", "periods_deleted")
    TIME_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    PERIODS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    PERIODS_FIELD_NUMBER: _ClassVar[int]
    PERIODS_DELETED_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    versions: int
    periods_changed: int
    periods: _containers.RepeatedScalarFieldContainer[str]
    periods_deleted: int
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., versions: _Optional[int] = ..., periods_changed: _Optional[int] = ..., periods: _Optional[_Iterable[str]] = ..., periods_deleted: _Optional[int] = ...) -> None: ...

class ListSeriesVintagesResponse(_message.Message):
    __slots__ = ("vintages", "next_page_token", "as_of")
    VINTAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    vintages: _containers.RepeatedCompositeFieldContainer[SeriesVintage]
    next_page_token: str
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, vintages: _Optional[_Iterable[_Union[SeriesVintage, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
