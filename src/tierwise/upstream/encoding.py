"""Content encodings as a server applies them: what the fakes (and the benchmark's compressing upstream)
use to answer like api.anthropic.com, which compresses when the request accepts it.

``choose(accept_encoding)`` picks the encoding a request accepts (the client's order, ``q=0`` refused);
``Encoder`` compresses a body, or a stream chunk by chunk with a flush after each chunk, so every
SSE event can be decoded as soon as it arrives (what a real streaming server does). ``br`` needs
``brotli`` (or ``brotlicffi``), ``zstd`` needs ``backports.zstd`` before Python 3.14; both are imported
only when asked for.
"""

from __future__ import annotations

import zlib
from typing import Any

__all__ = ["choose", "Encoder", "available"]


def _brotli() -> Any:
    try:
        import brotli
    except ImportError:
        import brotlicffi as brotli  # type: ignore[no-redef]
    return brotli


def _zstd() -> Any:
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        from backports import zstd  # type: ignore[no-redef]
    return zstd


def available() -> tuple[str, ...]:
    """The encodings this process can produce, in the order a server would prefer them."""
    out = ["gzip", "deflate"]
    for name, probe in (("br", _brotli), ("zstd", _zstd)):
        try:
            probe()
        except ImportError:
            continue
        out.append(name)
    return tuple(out)


def choose(accept_encoding: str | None, offered: tuple[str, ...] | None = None) -> str | None:
    """The first encoding of ``accept_encoding`` (in the client's order, q>0) that is offered; None = identity."""
    if not accept_encoding:
        return None
    offered = available() if offered is None else offered
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if q > 0 and name in offered:
            return name
    return None


class Encoder:
    """Compresses one response body: ``chunk(data)`` (flushed, decodable at once), then ``end()``."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        if encoding == "gzip":
            self._c: Any = zlib.compressobj(6, zlib.DEFLATED, 31)
        elif encoding == "deflate":  # HTTP "deflate" is the zlib format (RFC 9110 8.4.1.2)
            self._c = zlib.compressobj(6, zlib.DEFLATED, 15)
        elif encoding == "br":
            self._c = _brotli().Compressor()
        elif encoding == "zstd":
            self._c = _zstd().ZstdCompressor()
        else:
            raise ValueError(f"unknown content-encoding {encoding!r}")

    def chunk(self, data: bytes) -> bytes:
        c = self._c
        if self.encoding in ("gzip", "deflate"):
            return c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
        if self.encoding == "br":
            return c.process(data) + c.flush()
        return c.compress(data, mode=c.FLUSH_BLOCK)

    def end(self) -> bytes:
        c = self._c
        if self.encoding == "br":
            return c.finish()
        return c.flush()

    def whole(self, data: bytes) -> bytes:
        """A whole body in one go (no intermediate flush)."""
        c = self._c
        if self.encoding == "br":
            return c.process(data) + c.finish()
        return c.compress(data) + c.flush()
