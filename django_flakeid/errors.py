"""Every exception django_flakeid raises derives from :class:`FlakeIDError`."""

from __future__ import annotations


class FlakeIDError(Exception):
    """Base class for all django_flakeid errors."""


class ConfigurationError(FlakeIDError, ValueError):
    """A layout, node identity, epoch or count has an invalid value."""


class ConfigurationTypeError(ConfigurationError, TypeError):
    """A layout, node identity, epoch or count has the wrong type."""


class InvalidIDError(FlakeIDError, ValueError):
    """A value given as an ID is not an integer from 0 to 2**63 - 1."""


class LegacyIDError(InvalidIDError):
    """A key below ``Layout.min_snowflake_id``: kept from before its table took Snowflake IDs.

    Such a value is a sequential integer key, not a Snowflake ID, so it holds no time.
    """


class ClockBackwardsError(FlakeIDError):
    """The clock moved back further than the generator's tolerance, or stayed behind too long."""


class TimestampOverflowError(FlakeIDError):
    """The current time no longer fits in the layout's timestamp field."""


class EpochError(FlakeIDError):
    """The current time is before the layout's epoch."""


class ForkedProcessError(FlakeIDError):
    """A generator inherited through ``fork()`` was used in the child process."""


class NodeInUseError(FlakeIDError):
    """Another live process already generates IDs with the same node identity."""


class LeaseError(FlakeIDError):
    """A leased machine ID could not be claimed, or can no longer be trusted."""


class BackfillError(FlakeIDError, ValueError):
    """The model, the fields or the rows cannot be backfilled as asked."""


class RekeyError(FlakeIDError, ValueError):
    """A model's legacy keys cannot be replaced safely: found before any row is written."""


class ConversionError(FlakeIDError, ValueError):
    """The table cannot be converted as asked, or other transactions kept it locked.

    The first kind is raised before anything is made. The second leaves the partitioned copy
    made so far, which a new run resumes.
    """
