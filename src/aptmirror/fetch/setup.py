"""The run's transport and fetcher from the settings (also used by pool worker processes)."""

from __future__ import annotations

from pathlib import Path

from aptmirror.fetch.authconf import Credential, parse_auth_conf
from aptmirror.fetch.fetcher import Fetcher
from aptmirror.fetch.pace import SlowRate
from aptmirror.fetch.ratelimit import RateLimiter
from aptmirror.fetch.transport import HttpTransport, TransportOptions
from aptmirror.model import Settings
from aptmirror.observe.events import Emit


def read_auth_conf(path: str) -> tuple[tuple[Credential, ...], list[str]]:
    """Credentials from apt's auth.conf ``path`` and ``path.d/*.conf`` (missing = none)."""
    if not path:
        return (), []
    files = [Path(path)]
    parts = Path(f"{path}.d")
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.name.endswith(".conf"))
    found: list[Credential] = []
    problems: list[str] = []
    for file in files:
        try:
            found += parse_auth_conf(file.read_text(errors="replace"))
        except FileNotFoundError:
            continue
        except OSError as exc:
            problems.append(f"cannot read {file}: {exc.strerror or exc}")
    return tuple(found), problems


def transport_options(s: Settings, credentials: tuple[Credential, ...] = ()) -> TransportOptions:
    use_proxy = s.use_proxy
    return TransportOptions(
        https_only=s.https_only,
        credentials=credentials,
        max_connections=s.nthreads,
        max_connections_per_host=s.max_connections_per_host,
        connect_timeout=s.connect_timeout,
        read_timeout=s.read_timeout,
        http_proxy=(s.http_proxy or None) if use_proxy else None,
        https_proxy=(s.https_proxy or s.http_proxy or None) if use_proxy else None,
        proxy_user=s.proxy_user or None,
        proxy_password=s.proxy_password or None,
        verify_tls=not s.no_check_certificate,
        ca_certificate=s.ca_certificate or None,
        certificate=s.certificate or None,
        private_key=s.private_key or None,
    )


def make_fetcher(
    transport: HttpTransport,
    s: Settings,
    emit: Emit | None = None,
    limiter: RateLimiter | None = None,
) -> Fetcher:
    """The run's one Fetcher: retry, resume, global rate limit (``limiter``, else one of
    its own) and slow-rate settings."""
    slow = SlowRate(s.slow_rate, s.slow_rate_startup) if s.slow_rate_protection else None
    return Fetcher(
        transport,
        attempts=s.retry_attempts,
        base_delay=s.retry_delay,
        resume=s.resume_partial_downloads,
        resume_min_size=s.resume_min_size,
        limiter=limiter if limiter is not None else RateLimiter(s.limit_rate),
        slow_rate=slow,
        emit=emit,
    )
