"""Model blobs: the bytes of a model that lives on the supervisor's host, fetched by an unmanaged
worker (which may run on another machine), verified, and cached by content under
$GSK_HOME/cache/models/<sha256>/<name>. See PROTOCOL.md, *Model blobs*.

A ModelFetcher is used by one worker's I/O thread, one fetch at a time. Several workers
(processes) may fetch the same blob at once: each downloads and unpacks into a temporary
directory of its own and publishes the model with one rename, so a reader finds a complete model
or none.

http.client, tarfile and tempfile are imported by the first fetch: most workers never fetch a
blob.
"""

import hashlib
import json
import logging
import os
import re
import shutil
import ssl
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple
from urllib.parse import urlsplit

from giskard_worker_shim.errors import InvalidInput, ModelFetchError, ModelLoadError

log = logging.getLogger("giskard_worker_shim")

BLOBS_PATH = "/api/v1/model-blobs/"
FORMATS = ("file", "tar")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
_TMP_PREFIX = ".tmp-"

Handler = Callable[[Dict[str, Any]], Dict[str, Any]]


class BlobSpec(NamedTuple):
    sha256: str
    format: str
    name: str
    size: int

    def describe(self) -> str:
        return "model blob %s (%s, %d bytes)" % (self.sha256[:12], self.name, self.size)


def parse_spec(value: Any) -> BlobSpec:
    """The `modelBlob` param: {"sha256", "format": "file" | "tar", "name", "size"}."""
    if not isinstance(value, dict):
        raise InvalidInput('"modelBlob" must be an object')
    sha256, kind, name, size = (value.get(k) for k in ("sha256", "format", "name", "size"))
    if not isinstance(sha256, str) or not _SHA256.match(sha256.lower()):
        raise InvalidInput('"modelBlob"."sha256" must be 64 hexadecimal digits')
    if kind not in FORMATS:
        raise InvalidInput('"modelBlob"."format" must be "file" or "tar"')
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\0" in name \
            or len(name.encode("utf-8", "surrogateescape")) > 255:
        raise InvalidInput('"modelBlob"."name" must be a file name (no "/", not "." or "..")')
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidInput('"modelBlob"."size" must be a non-negative integer')
    return BlobSpec(sha256.lower(), kind, name, size)


class ModelFetcher:
    """Gets blobs from `base_url` + /api/v1/model-blobs/<sha256> with `headers` (the key stays
    in this object's memory) and keeps them in `cache_dir`."""

    def __init__(self, base_url: str, headers: Dict[str, str], cache_dir: str,
                 tls: Optional[ssl.SSLContext] = None, timeout: float = 60.0) -> None:
        self._base = base_url.rstrip("/")
        self._headers = dict(headers, Accept="application/octet-stream")
        self._cache = cache_dir
        self._tls = tls
        self._timeout = timeout

    def url(self, spec: BlobSpec) -> str:
        return self._base + BLOBS_PATH + spec.sha256

    def cached(self, spec: BlobSpec) -> Optional[str]:
        """The local path of the blob's model if it is in the cache."""
        path = os.path.join(self._cache, spec.sha256, spec.name)
        return path if os.path.lexists(path) else None

    def fetch(self, spec: BlobSpec) -> str:
        """The local path of the blob's model, downloaded, verified and unpacked if it is not
        cached yet. Raises ModelFetchError."""
        path = self.cached(spec)
        if path is not None:
            return path
        import tempfile  # noqa: PLC0415 (see the module's docstring)

        start = time.monotonic()
        try:
            os.makedirs(self._cache, exist_ok=True)
            _sweep_abandoned(self._cache)
            staging = tempfile.mkdtemp(prefix="%s%d-" % (_TMP_PREFIX, os.getpid()),
                                       dir=self._cache)
        except OSError as e:
            raise ModelFetchError("%s: cannot write the cache %s: %s"
                                  % (spec.describe(), self._cache, e)) from e
        try:
            path = self._stage_and_publish(spec, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info("fetched %s from %s in %.0f ms", spec.describe(), self.url(spec),
                 (time.monotonic() - start) * 1000)
        return path

    def _stage_and_publish(self, spec: BlobSpec, staging: str) -> str:
        out = os.path.join(staging, "out")
        try:
            os.mkdir(out)
            staged = os.path.join(out, spec.name)
            download = staged if spec.format == "file" else os.path.join(staging, "blob.tar")
            self._download(spec, download)
            if spec.format == "tar":
                extract_tar(download, staged)
            final_dir = os.path.join(self._cache, spec.sha256)
            os.makedirs(final_dir, exist_ok=True)
            return _publish(staged, os.path.join(final_dir, spec.name))
        except ModelFetchError as e:
            raise ModelFetchError("%s: %s" % (spec.describe(), e), e.status) from e
        except OSError as e:
            raise ModelFetchError("%s: cannot write the cache %s: %s"
                                  % (spec.describe(), self._cache, e)) from e

    def _download(self, spec: BlobSpec, dest: str) -> None:
        import http.client  # noqa: PLC0415 (see the module's docstring)

        url = self.url(spec)
        parts = urlsplit(url)
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=self._timeout,
                                               context=self._tls)  # type: Any
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self._timeout)
        response = None
        try:
            conn.request("GET", parts.path, headers=self._headers)
            response = conn.getresponse()
            if response.status != 200:
                raise ModelFetchError("GET %s answered HTTP %d %s%s" % (
                    url, response.status, response.reason,
                    _said(response.read(65536).decode("utf-8", "replace"))), response.status)
            length = response.getheader("Content-Length")
            if length is not None and length.strip() != str(spec.size):
                raise ModelFetchError("GET %s announced %s bytes, not %d" % (url, length,
                                                                             spec.size))
            received, digest = _copy_verified(response, dest, spec.size, url)
        except (OSError, http.client.HTTPException) as e:
            raise ModelFetchError("GET %s failed: %s: %s" % (url, type(e).__name__, e)) from e
        finally:
            if response is not None:
                response.close()  # it holds the socket open until closed, whatever conn does
            conn.close()
        if received != spec.size:
            raise ModelFetchError("GET %s gave %d bytes, not %d" % (url, received, spec.size))
        if digest != spec.sha256:
            raise ModelFetchError("the bytes from GET %s have SHA-256 %s, not the announced one"
                                  % (url, digest))


def _copy_verified(response: Any, dest: str, size: int, url: str) -> Tuple[int, str]:
    digest = hashlib.sha256()
    received = 0
    with open(dest, "xb") as out:
        while True:
            chunk = response.read(_CHUNK)
            if not chunk:
                break
            received += len(chunk)
            if received > size:
                raise ModelFetchError("GET %s gave more than the announced %d bytes"
                                      % (url, size))
            digest.update(chunk)
            out.write(chunk)
    return received, digest.hexdigest()


def _said(body: str) -> str:
    """': <the server's message>' from a JSON error body or text, or ''."""
    try:
        error = json.loads(body).get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return ": " + error["message"]
    except (ValueError, AttributeError):
        pass
    text = " ".join(body.split())[:300]
    return ": " + text if text else ""


def _publish(staged: str, final: str) -> str:
    """Moves `staged` to `final` with one rename, unless another worker published it first."""
    if os.path.lexists(final):
        return final
    try:
        os.rename(staged, final)
    except OSError:
        if os.path.lexists(final):  # a concurrent fetch of the same blob won the race
            return final
        raise
    return final


def _sweep_abandoned(cache: str) -> None:
    """Removes the staging directories of fetches whose process is gone (killed mid-fetch)."""
    for entry in os.listdir(cache):
        match = re.match(r"^%s(\d+)-" % re.escape(_TMP_PREFIX), entry)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(os.path.join(cache, entry), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # e.g. another user's process
    return True


# Tar archives.

def extract_tar(archive: str, dest: str) -> None:
    """Unpacks an uncompressed POSIX tar of a model folder's contents into the new directory
    `dest`: regular files and directories only, at relative paths inside `dest`. Raises
    ModelFetchError for anything else (absolute paths, `..`, links, devices, FIFOs) and for
    an unreadable archive."""
    import tarfile  # noqa: PLC0415 (see the module's docstring)

    os.mkdir(dest)
    try:
        with tarfile.open(archive, mode="r:") as archive_file:
            for member in archive_file:
                _extract_member(archive_file, member, dest)
    except tarfile.TarError as e:
        raise ModelFetchError("not a readable uncompressed tar archive: %s" % e) from e


def _extract_member(archive: Any, member: Any, dest: str) -> None:
    """One member of a tarfile.TarFile."""
    parts = member_path(member.name)
    if not (member.isreg() or member.isdir()):
        raise ModelFetchError("unsafe archive: %r is %s; only regular files and directories "
                              "are accepted" % (member.name, _kind(member)))
    if not parts:
        return  # the archive's root, "./"
    target = os.path.join(dest, *parts)
    if member.isdir():
        os.makedirs(target, exist_ok=True)
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    source = archive.extractfile(member)
    if source is None:
        raise ModelFetchError("cannot read %r from the archive" % member.name)
    try:
        with source, open(target, "xb") as out:
            shutil.copyfileobj(source, out, _CHUNK)
    except FileExistsError:
        raise ModelFetchError("unsafe archive: %r appears twice" % member.name) from None
    os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)


def member_path(name: str) -> List[str]:
    """The components of an archive member's path ([] for the root); ModelFetchError for an
    absolute path or one with `..`."""
    if name.startswith("/"):
        raise ModelFetchError("unsafe archive: %r is an absolute path" % name)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ModelFetchError("unsafe archive: %r goes up with '..'" % name)
    return parts


def _kind(member: Any) -> str:
    if member.issym():
        return "a symbolic link"
    if member.islnk():
        return "a hard link"
    if member.ischr() or member.isblk():
        return "a device"
    if member.isfifo():
        return "a FIFO"
    return "an entry of type %r" % member.type


# The model methods with blobs.

KNOWN_BLOBS = 256  # blobs whose local path with_blobs remembers, per method


def _blob_key(raw: Any) -> Optional[Tuple[str, str, str, int]]:
    """`raw` (a modelBlob param) as a key, or None when it is not made of exactly the expected
    types (then it goes through parse_spec, which says what is wrong)."""
    if not isinstance(raw, dict):
        return None
    key = (raw.get("sha256"), raw.get("format"), raw.get("name"), raw.get("size"))
    if type(key[0]) is str and type(key[1]) is str and type(key[2]) is str \
            and type(key[3]) is int:  # not bool, which would equal 0 or 1 as a key
        return key  # type: ignore[return-value]
    return None


def with_blobs(handler: Handler, fetcher: ModelFetcher,
               check_input: Optional[Callable[[Dict[str, Any]], Any]] = None) -> Handler:
    """`handler` (load_model, predict) for an unmanaged worker: when the params carry a
    `modelBlob`, the model is the blob's local copy (fetched first if need be; `check_input`
    validates the params before a download), and a result's "model" still echoes the
    supervisor's path.

    The local path of each blob a call succeeded with is remembered (by sha256, format, name
    and size, KNOWN_BLOBS at most), so the next call with that blob skips parsing it and looking
    for it in the cache: the handler's own stat of the model notices a change. An entry is
    forgotten when a call with it fails to load the model; if the local copy vanished (the cache
    was cleaned), the call fetches the blob again, as it would have without the entry."""
    known = {}  # type: Dict[Tuple[str, str, str, int], str]

    def call(params: Dict[str, Any], local: str) -> Dict[str, Any]:
        result = handler(dict(params, model=local))
        if "model" in result:
            result["model"] = params.get("model", local)
        return result

    def run(params: Dict[str, Any]) -> Dict[str, Any]:
        raw = params.get("modelBlob")
        if raw is None:
            return handler(params)
        key = _blob_key(raw)
        local = known.get(key) if key is not None else None
        if local is not None:
            try:
                return call(params, local)
            except Exception as e:
                vanished = not os.path.lexists(local)
                if vanished or isinstance(e, ModelLoadError):
                    known.pop(key, None)  # type: ignore[arg-type]
                if not vanished:
                    raise
                log.info("model blob %s vanished from the cache; fetching it again", local)
        spec = parse_spec(raw)
        local = fetcher.cached(spec)
        if local is None:
            if check_input is not None:
                check_input(params)
            local = fetcher.fetch(spec)
        result = call(params, local)
        if key is not None:
            known.pop(key, None)
            known[key] = local
            if len(known) > KNOWN_BLOBS:
                del known[next(iter(known))]  # the oldest
        return result
    return run
