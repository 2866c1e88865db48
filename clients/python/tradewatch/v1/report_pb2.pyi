import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from tradewatch.v1 import program_pb2 as _program_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TargetProgress(_message.Message):
    __slots__ = ("target", "title", "indicator", "status", "reason", "unit", "unit_multiplier", "baseline_period", "baseline_value", "latest_period", "latest_value", "target_period", "target_value", "attainment", "observed_cagr", "required_cagr", "ratio", "projected_value", "still_required_cagr", "as_of", "converted_from")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[TargetProgress.Status]
        STATUS_ACHIEVED: _ClassVar[TargetProgress.Status]
        STATUS_ON_TRACK: _ClassVar[TargetProgress.Status]
        STATUS_ACCELERATION_NEEDED: _ClassVar[TargetProgress.Status]
        STATUS_LIMITED_PROGRESS: _ClassVar[TargetProgress.Status]
        STATUS_DETERIORATION: _ClassVar[TargetProgress.Status]
        STATUS_MISSED: _ClassVar[TargetProgress.Status]
        STATUS_NOT_ASSESSABLE: _ClassVar[TargetProgress.Status]
    STATUS_UNSPECIFIED: TargetProgress.Status
    STATUS_ACHIEVED: TargetProgress.Status
    STATUS_ON_TRACK: TargetProgress.Status
    STATUS_ACCELERATION_NEEDED: TargetProgress.Status
    STATUS_LIMITED_PROGRESS: TargetProgress.Status
    STATUS_DETERIORATION: TargetProgress.Status
    STATUS_MISSED: TargetProgress.Status
    STATUS_NOT_ASSESSABLE: TargetProgress.Status
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    INDICATOR_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    UNIT_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    BASELINE_PERIOD_FIELD_NUMBER: _ClassVar[int]
    BASELINE_VALUE_FIELD_NUMBER: _ClassVar[int]
    LATEST_PERIOD_FIELD_NUMBER: _ClassVar[int]
    LATEST_VALUE_FIELD_NUMBER: _ClassVar[int]
    TARGET_PERIOD_FIELD_NUMBER: _ClassVar[int]
    TARGET_VALUE_FIELD_NUMBER: _ClassVar[int]
    ATTAINMENT_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_CAGR_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_CAGR_FIELD_NUMBER: _ClassVar[int]
    RATIO_FIELD_NUMBER: _ClassVar[int]
    PROJECTED_VALUE_FIELD_NUMBER: _ClassVar[int]
    STILL_REQUIRED_CAGR_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    CONVERTED_FROM_FIELD_NUMBER: _ClassVar[int]
    target: str
    title: str
    indicator: str
    status: TargetProgress.Status
    reason: str
    unit: str
    unit_multiplier: int
    baseline_period: str
    baseline_value: str
    latest_period: str
    latest_value: str
    target_period: str
    target_value: str
    attainment: float
    observed_cagr: float
    required_cagr: float
    ratio: float
    projected_value: str
    still_required_cagr: float
    as_of: _timestamp_pb2.Timestamp
    converted_from: str
    def __init__(self, target: _Optional[str] = ..., title: _Optional[str] = ..., indicator: _Optional[str] = ..., status: _Optional[_Union[TargetProgress.Status, str]] = ..., reason: _Optional[str] = ..., unit: _Optional[str] = ..., unit_multiplier: _Optional[int] = ..., baseline_period: _Optional[str] = ..., baseline_value: _Optional[str] = ..., latest_period: _Optional[str] = ..., latest_value: _Optional[str] = ..., target_period: _Optional[str] = ..., target_value: _Optional[str] = ..., attainment: _Optional[float] = ..., observed_cagr: _Optional[float] = ..., required_cagr: _Optional[float] = ..., ratio: _Optional[float] = ..., projected_value: _Optional[str] = ..., still_required_cagr: _Optional[float] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., converted_from: _Optional[str] = ...) -> None: ...

class CurrencyConversion(_message.Message):
    __slots__ = ("currency", "exchange_rate")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_RATE_FIELD_NUMBER: _ClassVar[int]
    currency: str
    exchange_rate: str
    def __init__(self, currency: _Optional[str] = ..., exchange_rate: _Optional[str] = ...) -> None: ...

class ExchangeRateUsed(_message.Message):
    __slots__ = ("period", "rate")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    period: str
    rate: str
    def __init__(self, period: _Optional[str] = ..., rate: _Optional[str] = ...) -> None: ...

class IndicatorLatest(_message.Message):
    __slots__ = ("indicator", "title", "unit", "unit_multiplier", "period", "value", "change_year_ago", "percent_change_year_ago", "cumulative")
    INDICATOR_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    UNIT_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_YEAR_AGO_FIELD_NUMBER: _ClassVar[int]
    PERCENT_CHANGE_YEAR_AGO_FIELD_NUMBER: _ClassVar[int]
    CUMULATIVE_FIELD_NUMBER: _ClassVar[int]
    indicator: str
    title: str
    unit: str
    unit_multiplier: int
    period: str
    value: str
    change_year_ago: str
    percent_change_year_ago: float
    cumulative: bool
    def __init__(self, indicator: _Optional[str] = ..., title: _Optional[str] = ..., unit: _Optional[str] = ..., unit_multiplier: _Optional[int] = ..., period: _Optional[str] = ..., value: _Optional[str] = ..., change_year_ago: _Optional[str] = ..., percent_change_year_ago: _Optional[float] = ..., cumulative: _Optional[bool] = ...) -> None: ...

class InitiativeCard(_message.Message):
    __slots__ = ("initiative", "children", "targets", "indicators")
    INITIATIVE_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    INDICATORS_FIELD_NUMBER: _ClassVar[int]
    initiative: _program_pb2.Initiative
    children: _containers.RepeatedCompositeFieldContainer[InitiativeCard]
    targets: _containers.RepeatedCompositeFieldContainer[TargetProgress]
    indicators: _containers.RepeatedCompositeFieldContainer[IndicatorLatest]
    def __init__(self, initiative: _Optional[_Union[_program_pb2.Initiative, _Mapping]] = ..., children: _Optional[_Iterable[_Union[InitiativeCard, _Mapping]]] = ..., targets: _Optional[_Iterable[_Union[TargetProgress, _Mapping]]] = ..., indicators: _Optional[_Iterable[_Union[IndicatorLatest, _Mapping]]] = ...) -> None: ...
