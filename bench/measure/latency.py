"""Latency in microseconds: HdrHistograms and their percentiles.

This module does no I/O and imports no Locust, so the Locust processes (``instrument.py``,
``openloop.py``) and the runner share one definition of a latency (``bench.units`` says how one
reads). Every request's latency is recorded in an HdrHistogram of whole microseconds that keeps
3 significant digits (a recorded value is off by at most 0.1 %), from 1 µs to an hour; histograms
travel and are kept as their compressed base64 encoding, and histograms of workers or repeats add
up exactly.

An open-loop request carries the time it was *meant* to leave (``INTENDED_SEND`` in the request
context): its latency counts from then, not from when it left, so a stall that held requests
back at the generator is counted in full (coordinated-omission correction).
"""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

from bench.units import SIGNIFICANT_DIGITS

#: the smallest and largest latency a histogram holds, µs; a larger one is recorded as the largest
LOWEST_US = 1
HIGHEST_US = 3_600_000_000
#: the percentiles of a latency summary: key → percentile; "max" is the largest value recorded
PERCENTILES = {"p50_us": 50.0, "p90_us": 90.0, "p99_us": 99.0, "p999_us": 99.9}
#: every latency key of a summary, in reading order
LATENCY_KEYS = (*PERCENTILES, "max_us")
#: the request-context key of an open-loop request's intended send time, seconds since the epoch
INTENDED_SEND = "intended_send"
#: the custom Locust message that starts a step of a run after the first (``instrument.py`` sends
#: it, ``openloop.py`` changes the offered rate): here because neither locustfile may import the
#: other (Locust loads each once as a file; an import would load it a second time)
STEP_MESSAGE = "bench_step"


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record(histogram: HdrHistogram, latency_us: float) -> int:
    """Record one latency; the whole microseconds recorded (clamped to the histogram's range)."""
    value = min(max(round(latency_us), LOWEST_US), HIGHEST_US)
    histogram.record_value(value)
    return value


def corrected_us(response_ms: float, start_time: float | None, intended: float | None) -> float:
    """A request's latency in µs: its response time, plus how late it left when it had a
    schedule (``start_time`` and ``intended`` are seconds since the epoch)."""
    late_s = max(start_time - intended, 0.0) if start_time and intended else 0.0
    return response_ms * 1000 + late_s * 1_000_000


def encode(histogram: HdrHistogram) -> str:
    return histogram.encode().decode("ascii")


def decode(encoded: str) -> HdrHistogram:
    return HdrHistogram.decode(encoded.encode("ascii"))


def merge(encoded: list[str]) -> HdrHistogram:
    """One histogram holding every value of the encoded ones."""
    merged = new_histogram()
    for text in encoded:
        merged.add(decode(text))
    return merged


def percentiles(histogram: HdrHistogram) -> dict[str, int | None]:
    """p50, p90, p99, p99.9 and max in µs; all None for an empty histogram."""
    if histogram.get_total_count() == 0:
        return dict.fromkeys(LATENCY_KEYS)
    values = {key: histogram.get_value_at_percentile(p) for key, p in PERCENTILES.items()}
    return {**values, "max_us": histogram.get_max_value()}


def summary_of(encoded: list[str]) -> dict:
    """The latency keys of the merged histograms, and the merged histogram itself."""
    merged = merge(encoded)
    return {**percentiles(merged), "latency_histogram": encode(merged)}
