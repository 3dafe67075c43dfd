"""Running one `ims-vcr` proxy process and talking to its control API (standard library only)."""

import hashlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request

from ims_vcr._binary import find_binary

MODES = ("record", "auto", "replay", "passthrough")
SEQUENCES = ("repeat-last", "cycle", "strict")
# Modes that forward to an upstream, and those that store what they forward.
FORWARDING = ("record", "auto", "passthrough")
STORING = ("record", "auto")
MAX_SESSION_NAME = 200
LISTENING = "listening on "
SUMMARY = "ims-vcr summary:"

# Control requests go straight to loopback, never through an HTTP(S)_PROXY of the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ProxyError(RuntimeError):
    """The proxy could not be started, asked or stopped; the message says why."""


_WINDOWS_DEVICE = re.compile(r"(?i)con|prn|aux|nul|com[0-9]|lpt[0-9]")


def _shown(command):
    """A command line as messages show it: the user information of any URL in it (an upstream or
    route given as `https://user:password@host`) replaced, as the binary shows it. Up to the
    URL's last `@`: a password may hold a `/` (a path's `@` then goes too, which is the safe way
    to be wrong)."""
    return " ".join(re.sub(r"(://)\S*@", r"\1REDACTED@", arg) for arg in command)


def session_name(nodeid):
    """The session name of a pytest node id: the test file's path without `.py`, then the test
    (class and function) names, `/`-separated; a parameter id follows the function name after
    `-`: `tests/test_images.py::TestGet::test_one[huawei]` is
    `tests/test_images/TestGet/test_one-huawei`.

    Session names are 1-200 characters of `A-Z a-z 0-9 . _ / -` in segments that are neither
    empty nor start with `.` (ims-vcr exports a session to the folder of that name). Other characters
    become `_`, a segment starting with `.` gets a leading `_` (ims-vcr skips hidden folders),
    a Windows device name (`con`, `aux.txt`) gets a leading `_` and a trailing `.` becomes `_`
    (Windows cannot make such folders), and when anything was replaced, or the name is too long,
    8 hex digits of a SHA-1 of the node id are appended to the last segment so that two tests
    never share a name.
    """
    path, _, rest = nodeid.partition("::")
    if path.endswith(".py"):
        path = path[: -len(".py")]
    params = None
    if rest.endswith("]") and "[" in rest:
        rest, _, params = rest[:-1].partition("[")
    raw = [s for s in path.replace("\\", "/").split("/")] + [s for s in rest.split("::") if s]
    if params is not None:
        if raw:
            raw[-1] = f"{raw[-1]}-{params}"
        else:
            raw.append(params)
    lossy = False
    segments = []
    for segment in raw:
        clean = re.sub(r"[^A-Za-z0-9._-]", "_", segment)
        if clean.startswith(".") or clean == "":
            clean = "_" + clean
        # Folders Windows cannot make (ims-vcr refuses such names): a device name, with or
        # without an extension, and a trailing `.`.
        if _WINDOWS_DEVICE.fullmatch(clean.split(".")[0]):
            clean = "_" + clean
        if clean.endswith("."):
            clean = clean[:-1] + "_"
        if clean != segment:
            lossy = True
        segments.append(clean)
    name = "/".join(segments) or "_"
    if lossy or len(name) > MAX_SESSION_NAME:
        suffix = "-" + hashlib.sha1(nodeid.encode("utf-8")).hexdigest()[:8]
        name = name[: MAX_SESSION_NAME - len(suffix)].rstrip("/") + suffix
        # Truncation may have left a `.`/`..` or hidden last segment; the suffix fixed emptiness.
        head, _, last = name.rpartition("/")
        if last.startswith("."):
            name = (head + "/" if head else "") + "_" + last[1:]
    return name


def _has_cassettes(folder):
    for _root, _dirs, files in os.walk(folder):
        if any(f.endswith(".json") for f in files):
            return True
    return False


def _looks_like_cassette(path):
    try:
        with open(path, "rb") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and "format" in doc and "answers" in doc


# Lines of a cassette that say when, how fast and by which ims-vcr it was recorded, not what:
# at the indentation `ims-vcr export` gives the top level (`tool`) and an answer's fields (a
# body's own fields are nested deeper). `export` itself leaves a cassette alone when only these
# (and the values a service makes afresh) differ: the plugin exports over a copy of the
# committed cassettes, and compares the same way when it puts the result in place.
_RECORDING_DETAILS = (b'  "tool": ', b'      "recorded_at": ', b'      "latency_ms": ')


def _same_answers(a, b):
    """True when cassette files `a` and `b` hold the same request and answers, byte for byte,
    but for when, how fast and by which ims-vcr they were recorded."""
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            old, new = fa.read(), fb.read()
    except OSError:
        return False

    def lines(data):
        return [l for l in data.split(b"\n") if not l.startswith(_RECORDING_DETAILS)]

    return old == new or lines(old) == lines(new)


def _copy_cassettes(source, target):
    """Copies the ims-vcr cassettes directly in folder `source` (if any) into `target`."""
    if not os.path.isdir(source):
        return
    for f in os.listdir(source):
        path = os.path.join(source, f)
        if f.endswith(".json") and os.path.isfile(path) and _looks_like_cassette(path):
            os.makedirs(target, exist_ok=True)
            shutil.copyfile(path, os.path.join(target, f))


def replace_session_cassettes(exported, cassettes, name, written=None):
    """Makes `cassettes/NAME/` hold exactly the cassette files of `exported/NAME/` (files directly
    in the folder: `NAME/sub/` is another session), or, given `written` (a folder an export
    wrote from scratch), those of `exported/NAME/` that `written/NAME/` holds too: an export
    over a copy of the committed cassettes leaves a hand-named or broken one there. Files that
    are not ims-vcr cassettes are left alone; each file is written under a temporary name and
    renamed. Returns the number of files.
    """
    parts = name.split("/")
    source = os.path.join(exported, *parts)
    target = os.path.join(cassettes, *parts)
    listed = os.path.join(written, *parts) if written is not None else source
    new = []
    if os.path.isdir(listed):
        new = sorted(
            f
            for f in os.listdir(listed)
            if f.endswith(".json") and os.path.isfile(os.path.join(source, f))
        )
    if os.path.isdir(target):
        for f in os.listdir(target):
            path = os.path.join(target, f)
            if f.endswith(".json") and f not in new and os.path.isfile(path):
                if _looks_like_cassette(path):
                    os.remove(path)
    if new:
        os.makedirs(target, exist_ok=True)
        for f in new:
            if _same_answers(os.path.join(source, f), os.path.join(target, f)):
                continue  # a cassette whose answers did not change is left as it is
            tmp = os.path.join(target, f".{f}.tmp")
            shutil.copyfile(os.path.join(source, f), tmp)
            os.replace(tmp, os.path.join(target, f))
    else:
        # Drop the folders left empty, up to the cassettes folder itself.
        folder = target
        while os.path.abspath(folder) != os.path.abspath(cassettes):
            try:
                os.rmdir(folder)
            except OSError:
                break
            folder = os.path.dirname(folder)
    return len(new)


class Proxy:
    """One `ims-vcr MODE --listen 127.0.0.1:0` process.

    replay: `--cassettes` (read-only, any number of processes may share it) or `--store`.
    record/auto: `--store` (a sled store: one process at a time) and `--upstream` (or routes).
    passthrough: `--upstream` (or routes) only.
    """

    def __init__(
        self,
        mode,
        *,
        upstream=None,
        routes=(),
        upstream_ca=None,
        store=None,
        cassettes=None,
        sequence=None,
        fail_on_unused=False,
        redact=True,
        binary=None,
        cwd=None,
        env=None,
        start_timeout=120.0,
    ):
        if mode not in MODES:
            raise ProxyError(f"unknown ims-vcr mode {mode!r}; one of {', '.join(MODES)}")
        if mode in FORWARDING and not upstream and not routes:
            raise ProxyError(
                f"ims-vcr mode {mode} forwards to an upstream: give --ims-vcr-upstream URL "
                f"(or IMS_VCR_UPSTREAM), e.g. https://ims.cn-north-4.myhuaweicloud.com, "
                f"or --ims-vcr-route PREFIX=URL"
            )
        if sequence is not None and sequence not in SEQUENCES:
            raise ProxyError(f"unknown sequence policy {sequence!r}; one of {', '.join(SEQUENCES)}")
        self.mode = mode
        self.upstream = upstream
        self.routes = list(routes)
        self.upstream_ca = upstream_ca
        self.store = store
        self.cassettes = cassettes
        self.sequence = sequence
        self.fail_on_unused = fail_on_unused
        self.redact = redact
        self.binary = binary or find_binary()
        self.cwd = cwd
        self.env = env
        self.start_timeout = start_timeout
        self.url = None
        self.returncode = None
        self._process = None
        self._lines = queue.Queue()
        self._stdout = []
        self._reader = None
        self._logdir = None
        self._stderr_path = None

    # -- process --------------------------------------------------------------------------

    def command(self):
        # Its stdin is a pipe this process holds: should pytest die without stopping it (a CI
        # job cancelled, SIGTERM, SIGKILL), the pipe ends and the proxy stops (drained, the
        # store flushed) instead of holding its port and store.
        args = [self.binary, self.mode, "--listen", "127.0.0.1:0", "--stop-on-stdin-eof"]
        if self.mode in FORWARDING:
            if self.upstream:
                args += ["--upstream", self.upstream]
            for route in self.routes:
                args.append(f"--route={route}")
            if self.upstream_ca:
                args += ["--upstream-ca", self.upstream_ca]
        if self.mode in STORING:
            args += ["--store", self.store]
            if self.redact:
                args.append("--redact")
        if self.mode == "replay":
            if self.store:
                args += ["--store", self.store]
            else:
                args += ["--cassettes", self.cassettes]
        if self.mode in ("replay", "auto"):
            if self.sequence:
                args += ["--sequence", self.sequence]
            if self.fail_on_unused:
                args.append("--fail-on-unused")
        return args

    def start(self):
        """Starts the process and waits for its `listening on URL` line."""
        self._logdir = tempfile.mkdtemp(prefix="ims-vcr-log-")
        self._stderr_path = os.path.join(self._logdir, "stderr.txt")
        with open(self._stderr_path, "wb") as stderr:
            try:
                self._process = subprocess.Popen(
                    self.command(),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    cwd=self.cwd,
                    env=self.env,
                    text=True,
                    encoding="utf-8",
                    errors="replace",
                )
            except OSError as e:
                raise ProxyError(f"cannot run {self.binary}: {e}") from e
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        try:
            line = self._lines.get(timeout=self.start_timeout)
        except queue.Empty:
            self.stop()
            raise ProxyError(
                f"{_shown(self.command())} printed no `listening on` line in "
                f"{self.start_timeout:.0f}s:\n{self.stderr()}"
            ) from None
        if line is None:
            code = self._process.wait()
            self.returncode = code
            raise ProxyError(
                f"{_shown(self.command())} exited with code {code} before listening:\n"
                f"{self.stderr()}"
            )
        self.url = line[len(LISTENING) :].strip()
        return self

    def _read_stdout(self):
        announced = False
        for line in self._process.stdout:
            self._stdout.append(line)
            if not announced and line.startswith(LISTENING):
                announced = True
                self._lines.put(line)
        if not announced:
            self._lines.put(None)

    def stop(self, timeout=60.0):
        """SIGTERM, wait (the proxy drains and flushes), SIGKILL after `timeout`. Returns the
        exit code (0, or 3 when a --fail-on-* verdict failed)."""
        process = self._process
        if process is None or self.returncode is not None:
            return self.returncode
        if process.poll() is None:
            try:
                if os.name == "nt":
                    process.terminate()
                else:
                    process.send_signal(signal.SIGTERM)
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdin is not None:
            process.stdin.close()
        if self._reader is not None:
            self._reader.join(timeout=5)
        self.returncode = process.returncode
        return self.returncode

    @property
    def running(self):
        return self._process is not None and self._process.poll() is None

    def stderr(self):
        """Everything the proxy wrote to stderr (its log lines and, once stopped, the summary)."""
        if not self._stderr_path:
            return ""
        try:
            with open(self._stderr_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def summary(self):
        """The exit summary: the stderr lines from `ims-vcr summary:` on."""
        lines = self.stderr().splitlines()
        for i, line in enumerate(lines):
            if line.startswith(SUMMARY):
                return lines[i:]
        return []

    def cleanup(self):
        if self._logdir:
            shutil.rmtree(self._logdir, ignore_errors=True)
            self._logdir = None

    # -- control API ----------------------------------------------------------------------

    def control(self, method, route, timeout=60.0):
        """`METHOD {url}/__ims-vcr/ROUTE` with no body (the control API refuses form content
        types); returns the JSON answer."""
        if self.url is None:
            raise ProxyError("the proxy is not running")
        request = urllib.request.Request(f"{self.url}/__ims-vcr/{route}", method=method)
        request.add_header("accept", "application/json")
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")
            raise ProxyError(f"{method} /__ims-vcr/{route}: {e.code} {detail}") from None
        except (urllib.error.URLError, OSError) as e:
            alive = "" if self.running else f" (the proxy exited: {self.stderr()[-2000:]})"
            raise ProxyError(f"{method} /__ims-vcr/{route}: {e}{alive}") from None
        return json.loads(body)

    def start_session(self, name):
        """Opens session NAME's own listener; returns its URL."""
        return self.control("POST", f"sessions/{name}/start")["url"]

    def stop_session(self, name):
        """Closes session NAME's listener; returns its verdict (`ok`, `misses`, ...)."""
        return self.control("POST", f"sessions/{name}/stop")

    def session_verdict(self, name):
        """Session NAME's verdict so far, the session going on (its listener stays open)."""
        return self.control("GET", f"sessions/{name}/verdict")

    def reset_session(self, name):
        """Rewinds session NAME's playback cursors."""
        return self.control("POST", f"sessions/{name}/reset")

    # -- store <-> cassettes --------------------------------------------------------------

    def run_tool(self, *args):
        """Runs `ims-vcr ARGS...` (export, import, verify) to completion; returns its stderr."""
        command = [self.binary, *args]
        done = subprocess.run(
            command,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        if done.returncode != 0:
            raise ProxyError(
                f"{_shown(command)} failed with code {done.returncode}:\n"
                f"{done.stdout}{done.stderr}"
            )
        return done.stderr

    def import_cassettes(self):
        """Loads the cassettes folder into the store (auto mode replays what was recorded)."""
        if self.cassettes and os.path.isdir(self.cassettes) and _has_cassettes(self.cassettes):
            self.run_tool("import", self.cassettes, "--store", self.store)

    def export_sessions(self, names, cassettes):
        """After `stop()`: exports the store, then replaces the cassettes of each session in
        `names` (and only those) under `cassettes/NAME/`. Returns {name: files}."""
        out = tempfile.mkdtemp(prefix="ims-vcr-export-")
        fresh = tempfile.mkdtemp(prefix="ims-vcr-export-")
        try:
            # The sessions' committed cassettes first: `export` leaves one alone when its
            # answers are the same but for what changes on every recording (times, trace and
            # request ids, a token's audit ids), so a re-record churns no diff.
            for name in names:
                _copy_cassettes(os.path.join(cassettes, *name.split("/")), os.path.join(out, *name.split("/")))
            # And into an empty folder: the names this export writes, so a committed cassette
            # it does not (a hand-named or broken one) goes, as a re-record replaces them all.
            for folder in (out, fresh):
                args = ["export", "--store", self.store, "--out", folder]
                if self.redact:
                    args.append("--redact")
                self.run_tool(*args)
            return {name: replace_session_cassettes(out, cassettes, name, fresh) for name in names}
        finally:
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(fresh, ignore_errors=True)
