"""What the interleaved benchmarks print for a set of per-round values: the median and [min, max]."""
import statistics


def spread(values, fmt: str = ".4g") -> str:
    return f"{statistics.median(values):{fmt}} [{min(values):{fmt}}, {max(values):{fmt}}]"
