"""Microbenchmarks of the framework's hot path, each beside references measured in the same run.

Case modules are ``bench_*.py`` (collected only when pytest is pointed here with
``-o python_files=bench_*.py``, so the normal test run never times them); ``cli`` runs them and
prints the ratio table, ``results`` reads pytest-benchmark's JSON, ``plot`` draws micro.png.
"""
