from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from tradewatch.v1 import indicator_pb2 as _indicator_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateIndicatorRequest(_message.Message):
    __slots__ = ("indicator", "indicator_id", "request_id")
    INDICATOR_FIELD_NUMBER: _ClassVar[int]
    INDICATOR_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    indicator: _indicator_pb2.Indicator
    indicator_id: str
    request_id: str
    def __init__(self, indicator: _Optional[_Union[_indicator_pb2.Indicator, _Mapping]] = ..., indicator_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetIndicatorRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListIndicatorsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter", "order_by")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    order_by: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ..., order_by: _Optional[str] = ...) -> None: ...

class ListIndicatorsResponse(_message.Message):
    __slots__ = ("indicators", "next_page_token")
    INDICATORS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    indicators: _containers.RepeatedCompositeFieldContainer[_indicator_pb2.Indicator]
    next_page_token: str
    def __init__(self, indicators: _Optional[_Iterable[_Union[_indicator_pb2.Indicator, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateIndicatorRequest(_message.Message):
    __slots__ = ("indicator", "update_mask")
    INDICATOR_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    indicator: _indicator_pb2.Indicator
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, indicator: _Optional[_Union[_indicator_pb2.Indicator, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteIndicatorRequest(_message.Message):
    __slots__ = ("name", "etag", "force")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    force: bool
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...
