"""glue.py - the Python half of loopspec's CPython adapter.

Compiled into libloopspec_cpython.so and run as the module _loopspec_glue
when the embedded interpreter starts.  It holds what is easier said in
Python than through the C API: which policy class the run checks
(LSPEC_CPYTHON_POLICY), the custom-policy class whose methods call C
overrides, run_until, subprocess_exec without awaiting it, the watcher kinds,
and the forwarding of warnings and of the 'asyncio' logger to the ABI's
warnings hook.  Everything here only calls asyncio's public API (and, for
run_until, wraps one loop iteration to look at the loop after it).
"""

import asyncio
import gc
import importlib
import logging
import platform
import selectors
import threading
import warnings

import _loopspec_c as _c

AbstractEventLoopPolicy = asyncio.AbstractEventLoopPolicy
AbstractEventLoop = asyncio.AbstractEventLoop
AbstractChildWatcher = asyncio.AbstractChildWatcher

# ABI constants (loopspec/abi.h).
E_UNSUPPORTED = -20
WARN_DEPRECATION, WARN_RUNTIME, WARN_RESOURCE = 1, 2, 3
WARN_LOG_WARNING, WARN_LOG_ERROR, WARN_LOG_DEBUG = 4, 5, 6
BACKEND_DEFAULT, BACKEND_EPOLL, BACKEND_POLL = 0, 1, 2
KIND_NATIVE = 6
WATCHER_CLASSES = (
    (1, "ThreadedChildWatcher"),
    (2, "MultiLoopChildWatcher"),
    (3, "SafeChildWatcher"),
    (4, "FastChildWatcher"),
    (5, "PidfdChildWatcher"),
)

ASYNCIO_DEFAULT_POLICY = asyncio.DefaultEventLoopPolicy
policy_class = ASYNCIO_DEFAULT_POLICY
policy_label = ""  # "" for asyncio's own, else "module x.y.z"


def status_error(status, text):
    """An exception that maps to exactly `status` (no Python class has it)."""
    exc = _c.LoopspecError(text)
    exc._lspec_status = status
    return exc


# --- which policy the run checks -------------------------------------------


def configure(spec):
    """Selects the policy class from LSPEC_CPYTHON_POLICY ('' = asyncio's
    DefaultEventLoopPolicy, 'uvloop', or 'module:Class') and makes it the
    default: asyncio.DefaultEventLoopPolicy is what get_event_loop_policy()
    instantiates lazily, and what set_event_loop_policy(None) brings back."""
    global policy_class, policy_label
    spec = spec.strip()
    if spec in ("", "asyncio", "default"):
        cls = ASYNCIO_DEFAULT_POLICY
    else:
        module, _, name = spec.partition(":")
        mod = importlib.import_module(module)
        cls = getattr(mod, name or "EventLoopPolicy")
        if not (isinstance(cls, type) and issubclass(cls, AbstractEventLoopPolicy)):
            raise TypeError(f"LSPEC_CPYTHON_POLICY={spec!r} is not an event loop policy class")
        top = importlib.import_module(module.partition(".")[0])
        policy_label = f"{top.__name__} {getattr(top, '__version__', '?')}"
    policy_class = cls
    asyncio.DefaultEventLoopPolicy = cls
    _install_forwarding()
    if cls is not ASYNCIO_DEFAULT_POLICY:
        # A library's once-per-process set-up happens now, not inside the
        # first test that makes a loop (libuv opens its signal-lock pipe in
        # its first uv_loop_init and keeps it for the process's lifetime).
        cls().new_event_loop().close()


def has_asyncio_watchers():
    """Whether the policy has asyncio's child-watcher machinery; uvloop's
    EventLoopPolicy inherits AbstractEventLoopPolicy's NotImplementedError."""
    return policy_class.get_child_watcher is not AbstractEventLoopPolicy.get_child_watcher


def _is_selector_loop_policy():
    return issubclass(policy_class, ASYNCIO_DEFAULT_POLICY)


def info():
    """(version text, offers NATIVE, offers the poll backend)."""
    text = f"CPython {platform.python_version()} asyncio"
    if policy_label:
        text += f" with {policy_label} ({policy_class.__module__}.{policy_class.__qualname__})"
    return (text, not has_asyncio_watchers(), _is_selector_loop_policy())


# --- warnings and the asyncio logger ---------------------------------------

_WARNING_CATEGORIES = (
    (DeprecationWarning, WARN_DEPRECATION),
    (PendingDeprecationWarning, WARN_DEPRECATION),
    (RuntimeWarning, WARN_RUNTIME),
    (ResourceWarning, WARN_RESOURCE),
)
_original_showwarning = warnings.showwarning


def _showwarning(message, category, filename, lineno, file=None, line=None):
    for cls, cat in _WARNING_CATEGORIES:
        if issubclass(category, cls):
            _c.emit(cat, str(message))
            return
    _original_showwarning(message, category, filename, lineno, file, line)


class _HookHandler(logging.Handler):
    """Hands each record of the 'asyncio' logger to the warnings hook."""

    def emit(self, record):
        try:
            text = record.getMessage()
        except Exception:  # a bad format string must not break the loop
            text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text = f"{text}: {type(exc).__name__}: {exc}"
        if record.levelno >= logging.ERROR:
            cat = WARN_LOG_ERROR
        elif record.levelno >= logging.WARNING:
            cat = WARN_LOG_WARNING
        else:
            cat = WARN_LOG_DEBUG
        _c.emit(cat, text)


def _install_forwarding():
    warnings.showwarning = _showwarning
    # Every warning reaches the hook, each time (the ABI has no -W).
    warnings.simplefilter("always")
    log = logging.getLogger("asyncio")
    log.addHandler(_HookHandler())
    log.setLevel(logging.DEBUG)
    log.propagate = False


# --- policies ----------------------------------------------------------------

METHODS = ("get_event_loop", "set_event_loop", "new_event_loop",
           "get_child_watcher", "set_child_watcher")


def _make_custom_class(base):
    class LoopspecCustomPolicy(base):
        """A policy whose methods are a test's C functions where it gave
        one, and `base`'s otherwise."""

        def __init__(self, capsule, mask):
            super().__init__()
            self._lspec_capsule = capsule
            self._lspec_mask = mask

        def get_event_loop(self):
            if self._lspec_mask & 1:
                return _c.override(self._lspec_capsule, 0, self, None)
            return super().get_event_loop()

        def set_event_loop(self, loop):
            if self._lspec_mask & 2:
                return _c.override(self._lspec_capsule, 1, self, loop)
            return super().set_event_loop(loop)

        def new_event_loop(self):
            if self._lspec_mask & 4:
                return _c.override(self._lspec_capsule, 2, self, None)
            return super().new_event_loop()

        def get_child_watcher(self):
            if self._lspec_mask & 8:
                return _c.override(self._lspec_capsule, 3, self, None)
            return super().get_child_watcher()

        def set_child_watcher(self, watcher):
            if self._lspec_mask & 16:
                return _c.override(self._lspec_capsule, 4, self, watcher)
            return super().set_child_watcher(watcher)

    LoopspecCustomPolicy.__qualname__ = f"LoopspecCustomPolicy[{base.__name__}]"
    return LoopspecCustomPolicy


_custom_classes = {}


def new_custom_policy(base, capsule, mask):
    """base 1: AbstractEventLoopPolicy; 2: the default policy of this run."""
    cls_base = AbstractEventLoopPolicy if base == 1 else policy_class
    cls = _custom_classes.get(cls_base)
    if cls is None:
        cls = _custom_classes[cls_base] = _make_custom_class(cls_base)
    return cls(capsule, mask)


def super_call(policy, name, *args):
    """policy_super_*: the base's method run on `policy` (super()); on a
    policy that is not a custom one, its own method."""
    if type(policy) in _custom_classes.values():
        return getattr(super(type(policy), policy), name)(*args)
    return getattr(policy, name)(*args)


def new_default_policy():
    return asyncio.DefaultEventLoopPolicy()


# --- loops -------------------------------------------------------------------


def loop_new(backend):
    if backend == BACKEND_DEFAULT:
        return policy_class().new_event_loop()
    if backend not in (BACKEND_EPOLL, BACKEND_POLL):
        raise ValueError(f"unknown loop backend {backend}")
    if _is_selector_loop_policy():
        selector = selectors.EpollSelector() if backend == BACKEND_EPOLL else selectors.PollSelector()
        return asyncio.SelectorEventLoop(selector)
    if backend == BACKEND_EPOLL and policy_class.__module__.partition(".")[0] == "uvloop":
        return policy_class().new_event_loop()  # libuv polls with epoll on Linux
    raise status_error(E_UNSUPPORTED, f"{policy_label}: no choice of loop backend")


def _noop():
    pass


def run_until(loop, pred, timeout):
    """Runs `loop` until pred() holds after an iteration (pred may be None)
    or `timeout` seconds pass (timeout < 0: no deadline).  Returns None when
    the predicate held (or, without one, at the deadline); raises
    TimeoutError at the deadline, RuntimeError if the loop was stopped
    first, and whatever run_forever raises."""
    if pred is None and timeout < 0:
        raise ValueError("run_until needs a predicate or a deadline")
    state = {"met": False, "deadline": False}

    def deadline_reached():
        state["deadline"] = True

    if isinstance(loop, asyncio.BaseEventLoop):
        _run_until_iterations(loop, pred, timeout, state, deadline_reached)
    else:
        _run_until_polling(loop, pred, timeout, state, deadline_reached)
    if state["met"]:
        return None
    if state["deadline"]:
        if pred is None:
            return None
        raise TimeoutError(f"run_until: the predicate did not hold within {timeout} s")
    if pred is not None and pred():
        return None
    raise RuntimeError("run_until: the loop was stopped before the predicate held")


def _run_until_iterations(loop, pred, timeout, state, deadline_reached):
    """asyncio's own loops: the predicate is checked after each iteration
    (BaseEventLoop._run_once), exactly as the ABI says."""
    # The errors run_forever raises, before anything is changed.
    loop._check_closed()
    check_running = getattr(loop, "_check_running", None)
    if check_running is not None:
        check_running()
    me = threading.get_ident()
    one_iteration = loop._run_once

    def run_once():
        one_iteration()
        if threading.get_ident() != me or state["met"]:
            return
        if pred is not None and pred():
            state["met"] = True
            loop.stop()
        elif state["deadline"]:
            loop.stop()

    timer = loop.call_later(timeout, deadline_reached) if timeout >= 0 else None
    loop._run_once = run_once
    try:
        loop.run_forever()
    finally:
        if loop.__dict__.get("_run_once") is run_once:
            del loop._run_once
        if timer is not None:
            timer.cancel()


def _run_until_polling(loop, pred, timeout, state, deadline_reached):
    """Other loops (uvloop), whose iterations Python cannot see: a callback
    that re-schedules itself with call_soon runs once per iteration and
    checks the predicate there.  The loop then never blocks while a
    predicate is pending (it spins), the price of stopping in the iteration
    the predicate came true."""
    handles = []

    def poll():
        if pred is not None and pred():
            state["met"] = True
            loop.stop()
            return
        if not state["deadline"]:
            handles.append(loop.call_soon(poll))

    def deadline():
        deadline_reached()
        loop.stop()

    if pred is not None:
        handles.append(loop.call_soon(poll))
    if timeout >= 0:
        handles.append(loop.call_later(timeout, deadline))
    try:
        loop.run_forever()
    finally:
        for h in handles:
            h.cancel()


# --- child watchers -------------------------------------------------------------


class NativeChildWatcher(AbstractChildWatcher):
    """The selected loop's own child handling (uvloop: libuv spawns and
    reaps its own children).  It backs LSPEC_WATCHER_NATIVE: it is always
    active, and it cannot watch a pid the loop did not spawn itself."""

    def add_child_handler(self, pid, callback, *args):
        raise status_error(E_UNSUPPORTED, f"{policy_label} watches only the processes its loop "
                           f"spawns (loop.subprocess_exec); it cannot watch pid {pid}")

    def remove_child_handler(self, pid):
        return False

    def attach_loop(self, loop):
        pass

    def close(self):
        pass

    def is_active(self):
        return True

    def __enter__(self):
        return self

    def __exit__(self, a, b, c):
        pass


def watcher_new(kind):
    if kind == KIND_NATIVE:
        if has_asyncio_watchers():
            raise status_error(E_UNSUPPORTED, "asyncio's policy has no native child watcher: "
                               "it uses asyncio's watchers")
        return NativeChildWatcher()
    for k, name in WATCHER_CLASSES:
        if k == kind:
            cls = getattr(asyncio, name, None)
            if cls is None:
                raise status_error(E_UNSUPPORTED, f"asyncio has no {name}")
            return cls()
    raise ValueError(f"unknown watcher kind {kind}")


def watcher_kind(w):
    if isinstance(w, NativeChildWatcher):
        return KIND_NATIVE
    for k, name in WATCHER_CLASSES:
        cls = getattr(asyncio, name, None)
        if cls is not None and isinstance(w, cls):
            return k
    raise TypeError(f"{type(w).__name__} is a child watcher of no kind loopspec knows")


def watcher_exit(w):
    return w.__exit__(None, None, None)


# --- subprocesses ------------------------------------------------------------------


class _ExitProtocol(asyncio.SubprocessProtocol):
    """Reports the exit (pid, returncode) to the C callback, in the loop's
    thread, then closes the transport."""

    def __init__(self, callback):
        self.callback = callback
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def process_exited(self):
        t = self.transport
        callback, self.callback = self.callback, None
        try:
            if callback is not None and t is not None:
                callback(t.get_pid(), t.get_returncode())
        finally:
            if t is not None:
                t.close()


def _is_transport_of(obj, protocol):
    return (hasattr(obj, "get_pid") and hasattr(obj, "get_returncode")
            and getattr(obj, "_protocol", protocol) is protocol)


def _find_transport(coro, protocol):
    """The transport whose protocol is `protocol`: spawning happens inside
    loop.subprocess_exec before its first suspension, but the transport is
    only handed to the protocol on a later iteration.  It is a local of one
    of the coroutines `coro` awaits (asyncio's _make_subprocess_transport
    holds it as `transp`): walk that chain, O(depth).  Coroutines whose
    frames cannot be read (compiled ones, such as uvloop's) fall back to a
    search of the objects that refer to the protocol, O(heap)."""
    c, depth = coro, 0
    while c is not None and depth < 32:
        frame = getattr(c, "cr_frame", None) or getattr(c, "gi_frame", None)
        if frame is not None:
            for value in frame.f_locals.values():
                if _is_transport_of(value, protocol):
                    return value
        c = getattr(c, "cr_await", None) or getattr(c, "gi_yieldfrom", None)
        depth += 1
    for ref in gc.get_referrers(protocol):
        if _is_transport_of(ref, protocol):
            return ref
        if isinstance(ref, dict):
            for owner in gc.get_referrers(ref):
                if _is_transport_of(owner, protocol):
                    return owner
    return None


def _drive(loop, coro, awaited):
    """Runs the rest of a coroutine as a Task would, without a Task (so the
    first part ran synchronously, inside the ABI call)."""

    def step(_=None):
        try:
            nxt = coro.send(None)
        except StopIteration:
            return
        except BaseException as exc:  # reported as asyncio reports a task's
            loop.call_exception_handler({"message": "loopspec: subprocess_exec failed",
                                         "exception": exc})
            return
        wait_on(nxt)

    def wait_on(fut):
        if fut is None:
            loop.call_soon(step)
        else:
            fut._asyncio_future_blocking = False
            fut.add_done_callback(step)

    wait_on(awaited)


def subprocess_exec(loop, argv, callback):
    """Spawns argv through loop.subprocess_exec (the policy's child watcher,
    or the loop's own mechanism); returns the pid.  The exit goes to
    callback(pid, returncode) in the loop's thread."""
    protocol = _ExitProtocol(callback)
    coro = loop.subprocess_exec(lambda: protocol, *argv, stdin=None, stdout=None, stderr=None)
    try:
        awaited = coro.send(None)
    except StopIteration as done:
        transport = done.value[0]
        return transport.get_pid()
    except BaseException:
        coro.close()
        raise
    transport = _find_transport(coro, protocol)
    _drive(loop, coro, awaited)
    if transport is None:
        raise status_error(-22, "subprocess_exec: spawned, but the transport was not found")
    return transport.get_pid()
