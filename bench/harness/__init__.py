"""Side-by-side benchmark harness for aptmirror, the Perl apt-mirror and apt-mirror2.

Not part of the test suite and not installed: ``bench/run.py`` puts ``bench/`` on the path.
"""
