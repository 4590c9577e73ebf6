"""The benchmark suite: the app under test, Locust scenarios, microbenchmarks, runner, report."""
