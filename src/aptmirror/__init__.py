"""aptmirror: a drop-in replacement for the Perl apt-mirror.

Decides what to fetch from the signed Release file, verifies every byte and publishes
each suite atomically. See README.md for the user-facing behaviour.
"""

__version__ = "0.1.0"
