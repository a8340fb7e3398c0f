"""Run history in SQLite under ``var/``: runs, per-repository results, published file versions."""
