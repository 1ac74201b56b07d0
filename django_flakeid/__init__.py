"""Time-ordered 64-bit Snowflake IDs for Django, with a generator core that needs no Django.

``import django_flakeid as flakeid`` gives the API of the ``flakeid`` package.
"""

from __future__ import annotations

from .errors import (
    BackfillError,
    ClockBackwardsError,
    ConfigurationError,
    ConfigurationTypeError,
    ConversionError,
    EpochError,
    FlakeIDError,
    ForkedProcessError,
    InvalidIDError,
    LeaseError,
    LegacyIDError,
    NodeInUseError,
    RekeyError,
    TimestampOverflowError,
)
from .factory import make_generator, make_generator_from_env, next_id, next_ids
from .generator import SnowflakeGenerator
from .layout import MAX_ID, Capacity, DecodedID, Layout
from .presets import (
    ALL_PRESETS,
    PRESET_HIGH_THROUGHPUT,
    PRESET_LARGE_CLUSTER,
    PRESET_MINIMAL,
    PRESET_SINGLE_DC,
    PRESET_TWITTER,
)

__version__ = "0.1.0"

__all__ = [
    "ALL_PRESETS",
    "MAX_ID",
    "PRESET_HIGH_THROUGHPUT",
    "PRESET_LARGE_CLUSTER",
    "PRESET_MINIMAL",
    "PRESET_SINGLE_DC",
    "PRESET_TWITTER",
    "BackfillError",
    "Capacity",
    "ClockBackwardsError",
    "ConfigurationError",
    "ConfigurationTypeError",
    "ConversionError",
    "DecodedID",
    "EpochError",
    "FlakeIDError",
    "ForkedProcessError",
    "InvalidIDError",
    "Layout",
    "LeaseError",
    "LegacyIDError",
    "NodeInUseError",
    "RekeyError",
    "SnowflakeGenerator",
    "TimestampOverflowError",
    "__version__",
    "make_generator",
    "make_generator_from_env",
    "next_id",
    "next_ids",
]
