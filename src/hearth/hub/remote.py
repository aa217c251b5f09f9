"""Read a remote GGUF's header without downloading its weights, through HTTP range requests.

`RangeFile` is a read-only, seekable file over a URL: each `read` is one `Range: bytes=a-b` GET of the hub's
`/resolve/` URL (the client follows the redirect to the CDN afresh each time, since CDN URLs may be signed for
one range). `hearth.store.gguf.read_gguf_header` walks it exactly as it walks a local file; it reads the
metadata and tensor descriptions and skips the tensor data, so a 4 GB model costs a few megabytes.
"""

from __future__ import annotations

import io
import re
from dataclasses import replace
from typing import Any

from hearth.errors import DownloadError
from hearth.fit.quants import bits_per_weight
from hearth.fit.shape import ModelShape
from hearth.hub.client import RemoteFile, auth_headers, file_url, hf, translate_errors
from hearth.store.gguf import read_gguf_header

MAX_HEADER_BYTES = 64 << 20  # no sane GGUF header is this large; stop before reading a model's weights
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class RangeFile(io.RawIOBase):
    """A remote file of known `size`, read with HTTP range requests; `fetched` counts the bytes received."""

    def __init__(self, url: str, size: int, headers: dict[str, str], *, limit: int = MAX_HEADER_BYTES) -> None:
        super().__init__()
        self.url = url
        self.size = size
        self.headers = headers
        self.limit = limit
        self.pos = 0
        self.fetched = 0
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes from the current position (one range request)."""
        end = self.size if size is None or size < 0 else min(self.size, self.pos + size)
        if end <= self.pos:
            return b""
        if self.fetched + (end - self.pos) > self.limit:
            raise DownloadError(f"the header of {self.url.rsplit('/', 1)[-1]} is larger than "
                                f"{self.limit >> 20} MB; refusing to read further")
        data = self._get(self.pos, end - 1)
        self.pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _get(self, first: int, last: int) -> bytes:
        wanted = last - first + 1
        headers = {**self.headers, "Range": f"bytes={first}-{last}"}
        self.requests += 1
        with hf().utils.get_session().stream("GET", self.url, headers=headers, follow_redirects=True) as response:
            hf().utils.hf_raise_for_status(response)
            if response.status_code == 206:
                match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
                if match is None or int(match.group(1)) != first:
                    raise DownloadError("the hub answered a range request with the wrong part of the file")
            elif first != 0:
                raise DownloadError("the hub ignored a range request (it does not support partial reads)")
            chunks, got = [], 0
            for chunk in response.iter_bytes():
                chunks.append(chunk[: wanted - got])
                got += len(chunks[-1])
                if got >= wanted:  # a server that ignored Range: stop at what was asked, drop the rest
                    break
        self.fetched += got
        data = b"".join(chunks)
        if len(data) != wanted:
            raise DownloadError(f"the hub sent {len(data)} bytes where {wanted} were asked for")
        return data


def remote_shape(file: RemoteFile, commit: str, *, total_size: int | None = None) -> tuple[ModelShape, RangeFile]:
    """The shape of a GGUF on the hub, read from its header alone (the RangeFile tells how much was fetched).

    For a split model `file` is its first part and `total_size` the listed size of all its parts: the header
    gives the architecture, and the weights (and parameters) are counted for the whole set.
    """
    handle = RangeFile(file_url(file.repo_id, file.filename, commit), file.size, auth_headers())
    with translate_errors(f"hf.co/{file.repo_id}/{file.filename}"):
        header = read_gguf_header(handle, file.size, f"hf.co/{file.repo_id}/{file.filename}")
    shape = ModelShape.from_header(header)
    if total_size is not None and total_size > file.size:
        # the other parts' bytes are weights of the file's type (their own small headers aside)
        rest = total_size - file.size
        parameters = shape.parameters + int(rest * 8 / (bits_per_weight(shape.quantization) or 8.0))
        shape = replace(shape, weights_bytes=shape.weights_bytes + rest, parameters=parameters)
    return shape, handle
