"""Microbenchmarks of the framework's hot path, each beside references measured in the same run.

Case modules are ``bench_*.py`` (collected only when pytest is pointed here with
``-o python_files=bench_*.py``, so the normal test run never times them); ``references`` holds
the werkzeug and Flask 3 apps they are compared with and ``harness`` what the cases share.
``cli`` runs them, ``results`` reads pytest-benchmark's JSON, ``table`` prints the ratio table and
``plot`` draws micro.png.
"""
