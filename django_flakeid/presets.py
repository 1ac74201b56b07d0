"""Named bit layouts. Each preset is a read-only mapping of the four field widths."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


def _preset(timestamp: int, datacenter: int, machine: int, sequence: int) -> Mapping[str, int]:
    return MappingProxyType(
        {
            "timestamp_bits": timestamp,
            "datacenter_bits": datacenter,
            "machine_bits": machine,
            "sequence_bits": sequence,
        }
    )


#: 32 datacenters x 32 machines, 4,096 IDs per millisecond per node, about 69.7 years.
PRESET_TWITTER = _preset(41, 5, 5, 12)
#: No node identity: one generator for the whole system, 1,024 IDs per millisecond.
PRESET_MINIMAL = _preset(53, 0, 0, 10)
#: One datacenter, 1,024 machines.
PRESET_SINGLE_DC = _preset(41, 0, 10, 12)
#: 256 datacenters x 256 machines, 64 IDs per millisecond per node.
PRESET_LARGE_CLUSTER = _preset(41, 8, 8, 6)
#: 8 datacenters x 8 machines, 65,536 IDs per millisecond per node.
PRESET_HIGH_THROUGHPUT = _preset(41, 3, 3, 16)

ALL_PRESETS: Mapping[str, Mapping[str, int]] = MappingProxyType(
    {
        "twitter": PRESET_TWITTER,
        "minimal": PRESET_MINIMAL,
        "single_dc": PRESET_SINGLE_DC,
        "large_cluster": PRESET_LARGE_CLUSTER,
        "high_throughput": PRESET_HIGH_THROUGHPUT,
    }
)
