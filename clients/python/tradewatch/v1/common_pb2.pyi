from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class Frequency(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FREQUENCY_UNSPECIFIED: _ClassVar[Frequency]
    FREQUENCY_ANNUAL: _ClassVar[Frequency]
    FREQUENCY_HALF_YEARLY: _ClassVar[Frequency]
    FREQUENCY_QUARTERLY: _ClassVar[Frequency]
    FREQUENCY_MONTHLY: _ClassVar[Frequency]

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    DIRECTION_HIGHER_IS_BETTER: _ClassVar[Direction]
    DIRECTION_LOWER_IS_BETTER: _ClassVar[Direction]
FREQUENCY_UNSPECIFIED: Frequency
FREQUENCY_ANNUAL: Frequency
FREQUENCY_HALF_YEARLY: Frequency
FREQUENCY_QUARTERLY: Frequency
FREQUENCY_MONTHLY: Frequency
DIRECTION_UNSPECIFIED: Direction
DIRECTION_HIGHER_IS_BETTER: Direction
DIRECTION_LOWER_IS_BETTER: Direction
