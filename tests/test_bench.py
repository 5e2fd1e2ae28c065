"""The benchmark reads wrk's report right: its figures are what the README quotes."""

import math

from bench.run import parse_wrk_output

OURS = """Running 6s test @ http://127.0.0.1:41023/api/predict
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    11.43ms  612.31us  16.71ms   87.90%
    Req/Sec   714.93     40.05   780.00     76.67%
  Latency Distribution
     50%   11.40ms
     75%   11.62ms
     90%   11.86ms
     99%   12.01ms
  4290 requests in 6.01s, 1.64MB read
Requests/sec:    713.95
Transfer/sec:    279.63KB
"""

# The naive baseline under 64 connections: latencies in seconds, with a trailing space.
SLOW = (
    "Running 6s test @ http://127.0.0.1:8785/api/predict\n"
    "  1 threads and 64 connections\n"
    "  Thread Stats   Avg      Stdev     Max   +/- Stdev\n"
    "    Latency     4.37s   819.46ms   5.99s    55.36%\n"
    "    Req/Sec    20.22     13.59    60.00     73.91%\n"
    "  Latency Distribution\n"
    "     50%    4.25s \n"
    "     75%    4.96s \n"
    "     90%    5.55s \n"
    "     99%    5.99s \n"
    "  56 requests in 6.01s, 20.07KB read\n"
    "  Socket errors: connect 0, read 2, write 0, timeout 3\n"
    "  Non-2xx or 3xx responses: 4\n"
    "Requests/sec:      9.32\n"
    "Transfer/sec:      3.34KB\n"
    "\n"
)


def test_figures_in_milliseconds() -> None:
    result = parse_wrk_output(OURS)
    assert result.requests_per_second == 713.95
    assert (result.p50_ms, result.p99_ms) == (11.40, 12.01)
    assert result.errors == 0


def test_figures_in_seconds_and_errors() -> None:
    result = parse_wrk_output(SLOW)
    assert result.requests_per_second == 9.32
    assert math.isclose(result.p50_ms, 4250.0) and math.isclose(result.p99_ms, 5990.0)
    assert result.errors == 2 + 3 + 4
