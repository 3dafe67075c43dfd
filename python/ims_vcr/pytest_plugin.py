"""pytest plugin for ims-vcr (loaded through the `pytest11` entry point of the ims-vcr wheel).

Each test that asks for the `ims_vcr` fixture gets its own ims-vcr **session**, named after the
test: its own listener URL (`ims_vcr.url`, to give an SDK as its endpoint), its own recordings,
playback cursors and verdict. A test whose requests missed (no recording answers them) fails,
naming each missed request. Cassettes live one folder per test under the cassettes folder, so
replay under `pytest -n auto` never shares a cursor between tests.

Options (docs/python.md has the full story):

  --ims-vcr-mode record|auto|replay|passthrough   default replay; IMS_VCR_MODE overrides the
                                                   default, the option overrides both
  --ims-vcr-upstream URL                           the real endpoint (record, auto, passthrough);
                                                   default IMS_VCR_UPSTREAM
  --ims-vcr-route PREFIX=URL                       forward paths under PREFIX to URL, e.g.
                                                   /v3=https://iam.myhuaweicloud.com (repeatable)
  --ims-vcr-upstream-ca PEM                        extra CA certificates to trust upstream
  --ims-vcr-cassettes DIR                          default: ini `ims_vcr_cassettes` (relative to
                                                   the ini file's folder), else <rootdir>/cassettes
  --ims-vcr-store DIR                              the sled store record/auto record into (default
                                                   a temporary folder); one per xdist worker
  --ims-vcr-sequence repeat-last|cycle|strict      playback after a request's last answer
  --ims-vcr-fail-on-unused                         a test also fails when it left recordings unused
  --ims-vcr-no-redact                              record and export without redaction

Marker: `@pytest.mark.ims_vcr(mode=..., sequence=...)` runs that test on a proxy of that mode and
sequence policy (started once per process on first use, like the main one).
"""

import os
import shutil
import tempfile

import pytest

from ims_vcr._proxy import (
    _shown,
    MODES,
    SEQUENCES,
    STORING,
    Proxy,
    ProxyError,
    session_name,
)

ENV_MODE = "IMS_VCR_MODE"
ENV_UPSTREAM = "IMS_VCR_UPSTREAM"
DEFAULT_MODE = "replay"
SESSION_HEADER = "x-ims-vcr-session"
MARKER_KEYWORDS = ("mode", "sequence")
# Miss lines shown in a failing test's message; the verdict's miss_count counts the rest.
SHOWN_MISSES = 20

_SETTINGS = pytest.StashKey()
_REPORT = pytest.StashKey()
_SESSION = pytest.StashKey()
# The verdict checked after the test body (the session then goes on through clean-up).
_CHECKED = pytest.StashKey()


def pytest_addoption(parser):
    group = parser.getgroup("ims-vcr", "ims-vcr: record and replay the Huawei Cloud IMS API")
    group.addoption(
        "--ims-vcr-mode",
        choices=MODES,
        default=None,
        help=f"record (forward and store every request), auto (replay what is recorded, record "
        f"the rest), replay (recordings only; never contacts the upstream) or passthrough "
        f"(forward, store nothing). Default: ${ENV_MODE}, else {DEFAULT_MODE}.",
    )
    group.addoption(
        "--ims-vcr-upstream",
        metavar="URL",
        default=None,
        help=f"Upstream for record/auto/passthrough, e.g. https://ims.cn-north-4.myhuaweicloud.com. "
        f"Default: ${ENV_UPSTREAM}.",
    )
    group.addoption(
        "--ims-vcr-route",
        metavar="PREFIX=URL",
        action="append",
        default=[],
        help="Forward paths under PREFIX to URL (record/auto/passthrough; repeatable), e.g. "
        "/v3=https://iam.myhuaweicloud.com to record the identity service's sign-in beside IMS. "
        "Enough without --ims-vcr-upstream when the routes cover every path.",
    )
    group.addoption(
        "--ims-vcr-upstream-ca",
        metavar="PEM",
        default=None,
        help="Extra CA certificates (PEM) to trust for every upstream, besides the public roots "
        "(a private cloud's, or a local stand-in's). Relative to the working directory.",
    )
    group.addoption(
        "--ims-vcr-cassettes",
        metavar="DIR",
        default=None,
        help="Cassettes folder: each test's cassettes are in DIR/<session name>/. Default: the "
        "ini option ims_vcr_cassettes, else <rootdir>/cassettes.",
    )
    group.addoption(
        "--ims-vcr-store",
        metavar="DIR",
        default=None,
        help="Store that record/auto record into (kept after the run; DIR/<worker id> under "
        "pytest-xdist). Default: a temporary folder. Each session's recordings are exported to "
        "the cassettes folder at the end of the run either way.",
    )
    group.addoption(
        "--ims-vcr-sequence",
        choices=SEQUENCES,
        default=None,
        help="What replay/auto answer after a request's last recorded answer (default: the "
        "proxy's, repeat-last).",
    )
    group.addoption(
        "--ims-vcr-fail-on-unused",
        action="store_true",
        default=False,
        help="A test also fails when its session left recordings unused (replay, auto).",
    )
    group.addoption(
        "--ims-vcr-no-redact",
        action="store_true",
        default=False,
        help="Record and export without --redact (cassettes then fail the ims-vcr-verify hook).",
    )
    parser.addini(
        "ims_vcr_cassettes",
        help="Cassettes folder, relative to the ini file's folder (default: <rootdir>/cassettes).",
        default=None,
    )


class Settings:
    """The run's resolved options."""

    def __init__(self, config):
        option = config.option
        env_mode = os.environ.get(ENV_MODE) or None
        if env_mode is not None and env_mode not in MODES:
            raise pytest.UsageError(f"{ENV_MODE}={env_mode!r}: use one of {', '.join(MODES)}")
        self.mode = option.ims_vcr_mode or env_mode or DEFAULT_MODE
        self.upstream = option.ims_vcr_upstream or os.environ.get(ENV_UPSTREAM) or None
        self.routes = list(option.ims_vcr_route)
        invocation = str(config.invocation_params.dir)
        # The proxies run in the rootdir: a relative path is the user's, from where pytest ran.
        self.upstream_ca = None
        if option.ims_vcr_upstream_ca:
            self.upstream_ca = os.path.abspath(os.path.join(invocation, option.ims_vcr_upstream_ca))
        if option.ims_vcr_cassettes:
            cassettes = os.path.join(invocation, option.ims_vcr_cassettes)
        elif config.getini("ims_vcr_cassettes"):
            base = config.inipath.parent if config.inipath else config.rootpath
            cassettes = os.path.join(str(base), config.getini("ims_vcr_cassettes"))
        else:
            cassettes = os.path.join(str(config.rootpath), "cassettes")
        self.cassettes = os.path.abspath(cassettes)
        self.worker = getattr(config, "workerinput", {}).get("workerid")
        self.store = None
        if option.ims_vcr_store:
            store = os.path.abspath(os.path.join(invocation, option.ims_vcr_store))
            # sled lets one process hold a store: each xdist worker records into its own.
            self.store = os.path.join(store, self.worker) if self.worker else store
        self.sequence = option.ims_vcr_sequence
        self.fail_on_unused = option.ims_vcr_fail_on_unused
        self.redact = not option.ims_vcr_no_redact
        self.rootdir = str(config.rootpath)

    def key(self, mode, sequence):
        # Sequence policies only change how replay and auto play back.
        return (mode, sequence if mode in ("replay", "auto") else None)


class Pool:
    """The proxies of one pytest process: the run's mode, and one per other (mode, sequence) a
    marker asked for, each started on first use and stopped at the end of the run."""

    def __init__(self, settings, verbose=False):
        self.settings = settings
        self.verbose = verbose
        self.proxies = {}
        self.failed = {}
        self.sessions = {}  # proxy key -> session names that ran on it
        self.names = {}  # session name -> node id
        self.tempdirs = []
        self.default_key = settings.key(settings.mode, settings.sequence)

    def proxy(self, mode, sequence):
        key = self.settings.key(mode, sequence)
        if key in self.proxies:
            return key, self.proxies[key]
        if key in self.failed:
            raise ProxyError(self.failed[key])
        try:
            proxy = self._start(key)
        except (ProxyError, FileNotFoundError) as e:
            self.failed[key] = str(e)
            raise ProxyError(str(e)) from None
        self.proxies[key] = proxy
        self.sessions[key] = []
        return key, proxy

    def _start(self, key):
        mode, sequence = key
        s = self.settings
        store = None
        cassettes = s.cassettes
        if mode in STORING:
            if key == self.default_key and s.store:
                store = s.store
                os.makedirs(os.path.dirname(store), exist_ok=True)
            else:
                temp = tempfile.mkdtemp(prefix=f"ims-vcr-{mode}-store-")
                self.tempdirs.append(temp)
                store = os.path.join(temp, "store")
        elif mode == "replay" and not os.path.isdir(cassettes):
            # Nothing recorded yet: replay an empty folder, so each test's misses are named.
            cassettes = tempfile.mkdtemp(prefix="ims-vcr-no-cassettes-")
            self.tempdirs.append(cassettes)
        proxy = Proxy(
            mode,
            upstream=s.upstream,
            routes=s.routes,
            upstream_ca=s.upstream_ca,
            store=store,
            cassettes=cassettes,
            sequence=sequence,
            fail_on_unused=s.fail_on_unused,
            redact=s.redact,
            cwd=s.rootdir,
        )
        if mode == "auto":
            proxy.import_cassettes()
        return proxy.start()

    def name_for(self, nodeid):
        name = session_name(nodeid)
        owner = self.names.setdefault(name, nodeid)
        if owner != nodeid:
            raise ProxyError(
                f"tests {owner!r} and {nodeid!r} both map to ims-vcr session {name!r}; rename one"
            )
        return name

    def close(self):
        """Stops every proxy, exports what record/auto recorded, and returns the report lines.
        Raises ProxyError (after stopping everything) if a proxy failed or an export failed."""
        lines, errors = [], []
        s = self.settings
        for key, proxy in self.proxies.items():
            mode, sequence = key
            code = proxy.stop()
            where = {
                "replay": f"cassettes {proxy.cassettes}"
                if proxy.cassettes == s.cassettes
                else f"cassettes {s.cassettes}: not found, nothing to replay",
                "record": _store_shown(proxy.store, s.store),
                "auto": _store_shown(proxy.store, s.store),
                "passthrough": _forwarding_shown(proxy),
            }[mode]
            policy = f", sequence {sequence}" if sequence else ""
            worker = f"[{s.worker}] " if s.worker else ""
            lines.append(f"{worker}ims-vcr {mode} ({where}{policy}) exited with code {code}")
            summary = proxy.summary()
            brief = summary if self.verbose else _brief(summary, set(self.sessions[key]))
            lines.extend("  " + line for line in brief)
            if code not in (0, 3):
                errors.append(f"ims-vcr {mode} exited with code {code}:\n{proxy.stderr()[-4000:]}")
            # Exported even after a failed exit: every answered request is in the store.
            if mode in STORING and self.sessions[key]:
                try:
                    exported = proxy.export_sessions(self.sessions[key], s.cassettes)
                except ProxyError as e:
                    errors.append(str(e))
                else:
                    files = sum(exported.values())
                    lines.append(
                        f"  exported {len(exported)} sessions ({files} cassettes) to {s.cassettes}"
                    )
            proxy.cleanup()
        self.proxies.clear()
        for temp in self.tempdirs:
            shutil.rmtree(temp, ignore_errors=True)
        self.tempdirs.clear()
        if errors:
            raise ProxyError("\n".join(errors))
        return lines


class ImsVcrSession:
    """What the `ims_vcr` fixture gives a test.

    - `url`: the session's own listener (`http://127.0.0.1:PORT`): every request sent there is in
      this test's session. Give it to an SDK as its endpoint.
    - `proxy_url` and `headers`: the shared listener, for clients that can send a header
      (`{"x-ims-vcr-session": name}`).
    - `name`, `mode`, `sequence`, `cassette_dir` (this test's folder of cassettes).
    - `reset()` rewinds this session's playback cursors; `verdict` is set once stopped.
    """

    def __init__(self, proxy, name, url, cassettes, mode, sequence):
        self._proxy = proxy
        self.name = name
        self.url = url
        self.proxy_url = proxy.url
        self.headers = {SESSION_HEADER: name}
        self.mode = mode
        self.sequence = sequence
        self.cassette_dir = os.path.join(cassettes, *name.split("/"))
        self.verdict = None

    @property
    def stopped(self):
        return self.verdict is not None

    def reset(self):
        return self._proxy.reset_session(self.name)

    def stop(self):
        if self.verdict is None:
            self.verdict = self._proxy.stop_session(self.name)
        return self.verdict

    def verdict_so_far(self):
        """The verdict of what the session did up to now; the session goes on."""
        return self._proxy.session_verdict(self.name)

    def __repr__(self):
        return f"ImsVcrSession(name={self.name!r}, url={self.url!r}, mode={self.mode!r})"


def _forwarding_shown(proxy):
    """Where a passthrough proxy forwards, as its report line names it: the upstream and each
    route, credentials in their URLs masked."""
    shown = [f"upstream {_shown([proxy.upstream])}"] if proxy.upstream else []
    shown += [f"route {_shown([route])}" for route in proxy.routes]
    return ", ".join(shown)


def _store_shown(store, kept):
    """The store a record/auto proxy recorded into, as its report line names it: a temporary one
    is removed at the end of the run, so its path would point at nothing."""
    if store == kept:
        return f"store {store}"
    return "a temporary store, removed at the end of the run: --ims-vcr-store DIR keeps one"


def _brief(summary, ran):
    """The summary's totals, its misses and the failed sessions among `ran` (the sessions this
    process's tests ran); `-v` shows all of it (with pytest-xdist each worker's proxy lists every
    session of the cassettes, most of them run by other workers, as unused: failed, under
    --ims-vcr-fail-on-unused, though no test of this worker used them)."""
    kept, failed = [], False
    for i, line in enumerate(summary):
        if i == 0 or line.startswith("  miss"):
            kept.append(line)
            failed = False
        elif line.startswith("  session "):
            name = line[len("  session "):].rsplit(": ", 2)[0]
            failed = line.rstrip().endswith("FAILED") and name in ran
            if failed:
                kept.append(line)
        elif line.startswith("    ") and failed:
            kept.append(line)
    return kept


def _problem(session, verdict=None, after=None):
    """The failure message of a verdict that is not ok, else None. `verdict` defaults to the
    session's final one. `after` (a verdict checked earlier) leaves out the misses it already
    reported; a verdict checked before clean-up (`after` is None and `verdict` is given) fails
    on misses only, as a recording its clean-up plays is not unused yet."""
    v = verdict if verdict is not None else session.verdict
    if v is None or v.get("ok", True):
        return None
    misses = v.get("misses") or []
    count = v.get("miss_count", len(misses))
    unused = v.get("unused") or []
    if verdict is not None and after is None:
        unused = []
    if after is not None:
        reported = after.get("miss_count", len(after.get("misses") or []))
        misses = misses[len(after.get("misses") or []):]
        count -= reported
    if count <= 0 and not unused:
        return None
    lines = [f"ims-vcr: session {session.name!r} ({session.mode} mode) failed its verdict:"]
    if count:
        lines.append(f"{count} request(s) had no recording:")
        lines += [f"  miss: {m}" for m in misses[:SHOWN_MISSES]]
        if count > min(len(misses), SHOWN_MISSES):
            lines.append(f"  ... and {count - min(len(misses), SHOWN_MISSES)} more")
    if unused:
        lines.append(f"{len(unused)} recording(s) were never played (--ims-vcr-fail-on-unused):")
        lines += [f"  unused: {u}" for u in unused[:SHOWN_MISSES]]
    lines.append(f"cassettes: {session.cassette_dir}")
    if count:
        lines.append(
            "record them: pytest --ims-vcr-mode record --ims-vcr-upstream URL (this test's "
            "requests), or --ims-vcr-mode auto (only what is missing; not for a test that "
            "signs in, as openstacksdk and Keystone clients do: auto replays its recorded "
            "sign-in, whose placeholder token the upstream refuses, so record it)"
        )
    return "\n".join(lines)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "ims_vcr(mode=None, sequence=None): run this test's ims-vcr session on a proxy in that "
        "mode (record, auto, replay, passthrough) and sequence policy (repeat-last, cycle, "
        "strict).",
    )
    config.stash[_SETTINGS] = Settings(config)
    config.stash[_REPORT] = []


def _marker(item, settings):
    marker = item.get_closest_marker("ims_vcr")
    mode, sequence = settings.mode, settings.sequence
    if marker is None:
        return mode, sequence
    if marker.args:
        raise ValueError(
            f"{item.nodeid}: @pytest.mark.ims_vcr takes keyword arguments only "
            f"({', '.join(MARKER_KEYWORDS)}), got {marker.args!r}"
        )
    unknown = sorted(set(marker.kwargs) - set(MARKER_KEYWORDS))
    if unknown:
        raise ValueError(
            f"{item.nodeid}: @pytest.mark.ims_vcr does not support {', '.join(unknown)}; "
            f"supported: {', '.join(MARKER_KEYWORDS)}"
        )
    mode = marker.kwargs.get("mode") or mode
    if mode not in MODES:
        raise ValueError(
            f"{item.nodeid}: @pytest.mark.ims_vcr(mode={mode!r}): use one of {', '.join(MODES)}"
        )
    sequence = marker.kwargs.get("sequence") or sequence
    if sequence is not None and sequence not in SEQUENCES:
        raise ValueError(
            f"{item.nodeid}: @pytest.mark.ims_vcr(sequence={sequence!r}): use one of "
            f"{', '.join(SEQUENCES)}"
        )
    return mode, sequence


@pytest.fixture(scope="session")
def ims_vcr_pool(request):
    """The process's ims-vcr proxies (one per pytest-xdist worker); stopped, with record/auto
    sessions exported to the cassettes folder, at the end of the run."""
    config = request.config
    pool = Pool(config.stash[_SETTINGS], verbose=config.option.verbose > 0)
    yield pool
    try:
        lines = pool.close()
    except ProxyError as e:
        _report(config, [f"ims-vcr: {line}" for line in str(e).splitlines()])
        pytest.fail(str(e), pytrace=False)
    _report(config, lines)


def _report(config, lines):
    config.stash[_REPORT].extend(lines)
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput.setdefault("ims_vcr_report", []).extend(lines)


@pytest.fixture
def ims_vcr(request, ims_vcr_pool):
    """This test's ims-vcr session (see ImsVcrSession): `ims_vcr.url` is its endpoint."""
    item = request.node
    try:
        mode, sequence = _marker(item, ims_vcr_pool.settings)
    except ValueError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        key, proxy = ims_vcr_pool.proxy(mode, sequence)
        name = ims_vcr_pool.name_for(item.nodeid)
        url = proxy.start_session(name)
    except ProxyError as e:
        pytest.fail(str(e), pytrace=False)
    ims_vcr_pool.sessions[key].append(name)
    session = ImsVcrSession(
        proxy, name, url, ims_vcr_pool.settings.cassettes, mode, sequence
    )
    item.stash[_SESSION] = session
    # A rerun (pytest-rerunfailures) is the same item: what its first attempt checked is not
    # this attempt's.
    if _CHECKED in item.stash:
        del item.stash[_CHECKED]
    yield session
    # Stopped last, after the teardown of every fixture that uses this one (fixtures that create
    # an image in set-up and delete it in clean-up reach `url` until then). What the test body
    # missed failed the test already (pytest_runtest_call); what clean-up missed, and, with
    # --ims-vcr-fail-on-unused, recordings nobody played, are a teardown error.
    if not session.stopped and proxy.running:
        checked = item.stash.get(_CHECKED, None)
        try:
            session.stop()
        except ProxyError as e:
            pytest.fail(f"ims-vcr: {e}", pytrace=False)
        problem = _problem(session, after=checked)
        if problem:
            pytest.fail(problem, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Checks the test's session right after its body and fails the test on a miss, so a miss is
    a test failure (not a teardown error) and names each missed request. The session itself goes
    on through the fixtures' clean-up (see `ims_vcr`)."""
    try:
        result = yield
    except BaseException:
        session = item.stash.get(_SESSION, None)
        if session is not None and not session.stopped:
            try:
                verdict = session.verdict_so_far()
                item.stash[_CHECKED] = verdict
                problem = _problem(session, verdict)
            except ProxyError as e:
                problem = f"ims-vcr: {e}"
            if problem:
                item.add_report_section("call", "ims-vcr", problem)
        raise
    session = item.stash.get(_SESSION, None)
    if session is not None and not session.stopped:
        try:
            verdict = session.verdict_so_far()
        except ProxyError as e:
            pytest.fail(f"ims-vcr: {e}", pytrace=False)
        item.stash[_CHECKED] = verdict
        problem = _problem(session, verdict)
        if problem:
            pytest.fail(problem, pytrace=False)
    return result


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """pytest-xdist: collect each worker's proxy report for the terminal summary."""
    lines = getattr(node, "workeroutput", {}).get("ims_vcr_report") or []
    node.config.stash[_REPORT].extend(lines)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    lines = config.stash.get(_REPORT, None)
    if lines:
        terminalreporter.write_sep("-", "ims-vcr")
        for line in lines:
            terminalreporter.write_line(line)
