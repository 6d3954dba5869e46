"""dsl.py - the step language of spec/clauses/*.toml, compiled to C.

One step per line; the language is documented in spec/clauses/README.md,
section 3.  compile_steps(test, clauses) returns the C source of one
Criterion test that calls only the harness (conformance/harness/harness.h)
and the ABI table; any problem raises DslError(line, message), line counted
from 1 at the first line of the steps string.
"""

import re


class DslError(Exception):
    def __init__(self, line, msg):
        super().__init__(f"line {line}: {msg}")
        self.line = line
        self.msg = msg


def c_string(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "?":
            out.append("?")  # gnu11: no trigraphs
        elif o < 0x20 or o == 0x7f:
            out.append(f"\\{o:03o}")
        else:
            out.append(ch)
    out.append('"')
    # Split after non-ASCII text so a following hex-looking char can never
    # extend an escape; UTF-8 bytes pass through as they are.
    return "".join(out)


# --- vocabulary ----------------------------------------------------------------

STATUS = {
    "OK": "LSPEC_OK", "RUNTIME": "LSPEC_E_RUNTIME", "VALUE": "LSPEC_E_VALUE",
    "TYPE": "LSPEC_E_TYPE", "NOTIMPL": "LSPEC_E_NOTIMPL",
    "ASSERTION": "LSPEC_E_ASSERTION",
    "PROCESS_LOOKUP": "LSPEC_E_PROCESS_LOOKUP",
    "CHILD_PROCESS": "LSPEC_E_CHILD_PROCESS", "OS": "LSPEC_E_OS",
    "ATTRIBUTE": "LSPEC_E_ATTRIBUTE", "KEY": "LSPEC_E_KEY",
    "TIMEOUT": "LSPEC_E_TIMEOUT", "NOMEM": "LSPEC_E_NOMEM",
    "UNSUPPORTED": "LSPEC_E_UNSUPPORTED",
    "UNAVAILABLE": "LSPEC_E_UNAVAILABLE", "INTERNAL": "LSPEC_E_INTERNAL",
    "ERROR": "LH_ANY_ERROR",
}
BACKENDS = {"DEFAULT": "LSPEC_BACKEND_DEFAULT", "EPOLL": "LSPEC_BACKEND_EPOLL",
            "POLL": "LSPEC_BACKEND_POLL"}
BASES = {"ABSTRACT": "LSPEC_POLICY_BASE_ABSTRACT",
         "DEFAULT": "LSPEC_POLICY_BASE_DEFAULT"}
KINDS = {k: f"LSPEC_WATCHER_{k}" for k in
         ("THREADED", "MULTILOOP", "SAFE", "FAST", "PIDFD", "NATIVE")}
CATEGORIES = {
    "DEPRECATION": "LSPEC_WARN_DEPRECATION", "RUNTIME": "LSPEC_WARN_RUNTIME",
    "RESOURCE": "LSPEC_WARN_RESOURCE", "LOG_WARNING": "LSPEC_WARN_LOG_WARNING",
    "LOG_ERROR": "LSPEC_WARN_LOG_ERROR", "LOG_DEBUG": "LSPEC_WARN_LOG_DEBUG",
}
SPY_METHODS = {m: f"LH_SPY_{m.upper()}" for m in
               ("get_event_loop", "set_event_loop", "new_event_loop",
                "get_child_watcher", "set_child_watcher")}
CHILD_MODES = {"EXIT": "LH_CHILD_EXIT", "SIGNAL": "LH_CHILD_SIGNAL",
               "GATED": "LH_CHILD_GATED"}
SIGNALS = {"SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT",
           "SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2",
           "SIGPIPE", "SIGALRM", "SIGTERM", "SIGCHLD", "SIGCONT", "SIGSTOP",
           "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ",
           "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGSYS", "NSIG"}

HANDLE_TYPES = {"policy": "lspec_policy", "loop": "lspec_loop",
                "watcher": "lspec_watcher"}
TRACK_KIND = {"policy": "LH_POLICY", "loop": "LH_LOOP",
              "watcher": "LH_WATCHER"}

# Calls that hand out a handle: name -> (argument kinds, result type).
GETTERS = {
    "get_event_loop_policy": ([], "policy"),
    "get_event_loop": ([], "loop"),
    "get_running_loop": ([], "loop"),
    "new_event_loop": ([], "loop"),
    "get_child_watcher": ([], "watcher"),
    "policy_new_default": ([], "policy"),
    "policy_new_windows_selector": ([], "policy"),
    "policy_new_windows_proactor": ([], "policy"),
    "policy_get_event_loop": (["policy"], "loop"),
    "policy_new_event_loop": (["policy"], "loop"),
    "policy_get_child_watcher": (["policy"], "watcher"),
    "loop_new": (["backend"], "loop"),
    "watcher_new": (["kind"], "watcher"),
    "watcher_enter": (["watcher"], "watcher"),
}
# Calls that return only a status.
STATUS_OPS = {
    "set_event_loop_policy": ["policy"],
    "set_event_loop": ["loop"],
    "set_child_watcher": ["watcher"],
    "policy_set_event_loop": ["policy", "loop"],
    "policy_set_child_watcher": ["policy", "watcher"],
    "loop_run_forever": ["loop"],
    "loop_stop": ["loop"],
    "loop_close": ["loop"],
    "loop_cancel": ["loop", "hid"],
    "loop_add_reader": ["loop", "fd", "cb"],
    "loop_add_signal_handler": ["loop", "sig", "cb"],
    "watcher_attach_loop": ["watcher", "loop"],
    "watcher_add_child_handler": ["watcher", "pid", "ccb"],
    "watcher_close": ["watcher"],
    "watcher_exit": ["watcher"],
}
# Calls that schedule a callback and may bind its handle id.
SCHEDULE_OPS = {
    "loop_call_soon": ["loop", "cb"],
    "loop_call_soon_threadsafe": ["loop", "cb"],
    "loop_call_later": ["loop", "num", "cb"],
}
# Integer queries that return a value or a status.
QUERIES = {
    "loop_is_running": ["loop"],
    "loop_is_closed": ["loop"],
    "loop_remove_reader": ["loop", "fd"],
    "loop_remove_signal_handler": ["loop", "sig"],
    "watcher_remove_child_handler": ["watcher", "pid"],
    "watcher_is_active": ["watcher"],
    "watcher_kind": ["watcher"],
}
# Integer queries of the harness's own records.
VALUE_QUERIES = {"count": 1, "calls": 2, "warnings": 1, "len": 1,
                 "called": 1, "returncode": 2, "sigchld_handled": 0}
HELPERS = {"pipe": 2, "write": 2, "raise": 1, "clear_warnings": 0,
           "tolerate_pidfd_leak": 0,
           "policy_new_spy": 2, "policy_new_custom": 1, "loop_run_until": 3,
           "spawn_child": 2, "spawn_sleeper": 0, "kill": 2, "reap": 1,
           "release": 1, "loop_subprocess_exec": None}
CHECKS = {"same": 2, "not_same": 2, "null": 1, "not_null": 1, "true": 1,
          "false": 1, "eq": 2, "trace": 1, "warned": (1, 2),
          "not_warned": 1, "exited": 3, "killed": 3, "called_in_loop": 2,
          "reaped": 1, "not_reaped": 1}
RESERVED = {"none", "trace", "in_thread", "in_loop"}
ALL_OPS = (set(GETTERS) | set(STATUS_OPS) | set(SCHEDULE_OPS) | set(QUERIES)
           | set(VALUE_QUERIES) | set(HELPERS) | set(CHECKS))

TOKEN_RE = re.compile(r"""\s*(?:
    (?P<str>'(?:[^'\\]|\\.)*')
  | (?P<num>-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>->|>=|[(),={}])
)""", re.X)


def strip_comment(line):
    quote = False
    i = 0
    while i < len(line):
        ch = line[i]
        if quote and ch == "\\":
            i += 2
            continue
        if ch == "'":
            quote = not quote
        elif ch == "#" and not quote:
            return line[:i]
        i += 1
    return line


def tokenize(text, lineno):
    toks = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            rest = text[pos:].strip()
            if rest.startswith("'"):
                raise DslError(lineno, "unterminated string")
            raise DslError(lineno, f"cannot read {rest[:20]!r}")
        kind = m.lastgroup
        val = m.group(kind)
        if kind == "str":
            val = re.sub(r"\\(.)", r"\1", val[1:-1])
        toks.append((kind, val))
        pos = m.end()
    return toks


class Parser:
    """Turns one line's tokens into a statement."""

    def __init__(self, toks, lineno):
        self.toks = toks
        self.i = 0
        self.line = lineno

    def peek(self, k=0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else (None, None)

    def take(self, kind=None, val=None):
        tok = self.peek()
        if tok[0] is None:
            raise DslError(self.line, "unexpected end of step"
                           + (f", expected {val!r}" if val else ""))
        if (kind and tok[0] != kind) or (val and tok[1] != val):
            want = val or kind
            raise DslError(self.line, f"expected {want!r}, found {tok[1]!r}")
        self.i += 1
        return tok

    def at_end(self):
        return self.i >= len(self.toks)

    def arg(self):
        kind, val = self.take()
        if kind == "str":
            node = ("str", val)
        elif kind == "num":
            node = ("num", val)
        elif kind == "id":
            if self.peek() == ("op", "("):
                node = self.call_rest(val)
            else:
                node = ("name", val)
        else:
            raise DslError(self.line, f"unexpected {val!r}")
        if self.peek() == ("op", ">="):
            self.take()
            k, v = self.take("num")
            node = ("ge", node, ("num", v))
        return node

    def call_rest(self, name):
        self.take("op", "(")
        args = []
        if self.peek() != ("op", ")"):
            args.append(self.arg())
            while self.peek() == ("op", ","):
                self.take()
                args.append(self.arg())
        self.take("op", ")")
        return ("call", name, args)

    def statement(self):
        first = self.peek()
        if first == ("op", "}"):
            self.take()
            self.end()
            return {"kind": "close"}
        if first == ("id", "in_thread"):
            self.take()
            self.take("op", "{")
            self.end()
            return {"kind": "thread"}
        if first == ("id", "in_loop"):
            self.take()
            self.take("op", "(")
            k, v = self.take("id")
            self.take("op", ")")
            self.take("op", "{")
            self.end()
            return {"kind": "loop", "loop": ("name", v)}
        target = None
        if first[0] == "id" and self.peek(1) == ("op", "="):
            target = first[1]
            self.i += 2
        k, name = self.take("id")
        if self.peek() != ("op", "("):
            raise DslError(self.line, f"expected a call like {name}(...)")
        call = self.call_rest(name)
        expect = None
        if self.peek() == ("op", "->"):
            self.take()
            k, status = self.take("id")
            substr = None
            if self.peek()[0] == "str":
                substr = self.take()[1]
            expect = (status, substr)
        self.end()
        return {"kind": "step", "target": target, "call": call,
                "expect": expect}

    def end(self):
        if not self.at_end():
            raise DslError(self.line, f"unexpected {self.peek()[1]!r} at "
                           "the end of the step")


def describe(node):
    kind = node[0]
    if kind == "name":
        return node[1]
    if kind == "num":
        return node[1]
    if kind == "str":
        return repr(node[1])
    if kind == "ge":
        return f"{describe(node[1])} >= {node[2][1]}"
    return f"{node[1]}({', '.join(describe(a) for a in node[2])})"


class Compiler:
    def __init__(self, test):
        self.t = test
        self.name = test["name"]
        self.prefix = f"lt_{self.name}"
        self.vars = {}        # name -> type
        self.order = []       # declaration order of ctx fields
        self.funcs = []       # (c name, signature, lines)
        self.line = 0
        self.kinds = set()    # watcher kinds the test needs

    # --- errors and locations ---

    def err(self, msg):
        raise DslError(self.line, msg)

    def where(self, text):
        path = self.t["path"]
        sl = self.t.get("steps_line")
        loc = f"{path}:{sl + self.line - 1}" if sl else f"{path}"
        return c_string(f"{loc}: {text.strip()}")

    # --- variables ---

    def bind(self, name, typ):
        if not re.match(r"^[a-z][a-z0-9_]*$", name):
            self.err(f"bad variable name {name!r} (lower case, "
                     "[a-z][a-z0-9_]*)")
        if name in RESERVED or name in ALL_OPS:
            self.err(f"{name!r} is reserved and cannot be a variable")
        old = self.vars.get(name)
        if old is not None and old != typ:
            self.err(f"variable {name!r} is a {old}; it cannot now hold a "
                     f"{typ}")
        if old is None:
            self.vars[name] = typ
            self.order.append(name)
        return f"ctx->v_{name}"

    def var(self, node, types, role):
        if node[0] != "name":
            self.err(f"{role}: expected a variable, found {describe(node)}")
        name = node[1]
        typ = self.vars.get(name)
        if typ is None:
            self.err(f"unknown variable {name!r} ({role})")
        if typ not in types:
            self.err(f"{role}: {name!r} is a {typ}, expected "
                     f"{' or '.join(types)}")
        return f"ctx->v_{name}", typ

    def handle(self, node, want, role):
        """A handle argument: any handle variable (cast to the wanted kind,
        for the wrong-type cases) or NULL."""
        if node == ("name", "NULL"):
            return "NULL"
        expr, typ = self.var(node, tuple(HANDLE_TYPES), role)
        if typ == want:
            return expr
        return f"({HANDLE_TYPES[want]} *)(void *){expr}"

    def const(self, node, table, role, allow_int=True):
        if node[0] == "name" and node[1] in table:
            return table[node[1]]
        if allow_int and node[0] == "num" and re.match(r"^-?[0-9]+$",
                                                       node[1]):
            return node[1]
        self.err(f"{role}: expected one of {', '.join(table)}"
                 + (" or an integer" if allow_int else "")
                 + f", found {describe(node)}")

    def number(self, node, role):
        if node[0] != "num":
            self.err(f"{role}: expected a number, found {describe(node)}")
        v = node[1]
        return v if any(c in v for c in ".eE") else v + ".0"

    def fd(self, node, role):
        if node[0] == "num" and re.match(r"^-?[0-9]+$", node[1]):
            return node[1]
        expr, _ = self.var(node, ("fd",), role)
        return expr

    def sig(self, node, role):
        if node[0] == "name" and node[1] in SIGNALS:
            return node[1]
        if node[0] == "num" and re.match(r"^-?[0-9]+$", node[1]):
            return node[1]
        self.err(f"{role}: expected a signal name (SIGUSR1, ..., NSIG) or "
                 f"a number, found {describe(node)}")

    def string(self, node, role):
        if node[0] != "str":
            self.err(f"{role}: expected a 'string', found {describe(node)}")
        return c_string(node[1])

    def callback(self, node):
        """Returns (C function, C argument)."""
        if node == ("name", "NULL"):
            return "NULL", "NULL"
        if node[0] == "name":
            name = node[1]
            if self.vars.get(name) not in (None, "counter"):
                self.err(f"callback {name!r} is a {self.vars[name]}, not a "
                         "counter")
            expr = self.bind(name, "counter")
            return "lh_counter_cb", f"(void *)&{expr}"
        if node[0] == "call" and node[1] == "mark":
            self.arity(node, 1)
            return "lh_mark_cb", f"(void *){self.string(node[2][0], 'mark')}"
        if node[0] == "call" and node[1] == "stop":
            self.arity(node, 1)
            return "lh_stop_cb", f"(void *){self.handle(node[2][0], 'loop', 'stop')}"
        self.err(f"bad callback {describe(node)} (a counter name, "
                 "mark('x'), stop(l) or NULL)")

    def pid(self, node, role):
        """A pid: a child variable or an integer (1, 0, -1, ...)."""
        if node[0] == "num" and re.match(r"^-?[0-9]+$", node[1]):
            return node[1]
        expr, _ = self.var(node, ("child",), role)
        return expr

    def recorder(self, node, role, bind=True):
        """A recorder variable (declared by first use when bind)."""
        if node[0] != "name" or node[1] in ("NULL", "none"):
            self.err(f"{role}: expected a recorder name, found "
                     f"{describe(node)}")
        name = node[1]
        if self.vars.get(name) not in (None, "recorder"):
            self.err(f"{role}: {name!r} is a {self.vars[name]}, not a "
                     "recorder")
        if name not in self.vars and not bind:
            self.err(f"unknown variable {name!r} ({role})")
        return self.bind(name, "recorder")

    def child_callback(self, node):
        """A child-exit callback: a recorder (declared by first use) or
        NULL.  Returns (C function, C argument)."""
        if node == ("name", "NULL"):
            return "NULL", "NULL"
        expr = self.recorder(node, "child callback")
        return "lh_record_cb", f"(void *)&{expr}"

    def arity(self, node, n):
        name, args = node[1], node[2]
        ok = len(args) in n if isinstance(n, tuple) else len(args) == n
        if not ok:
            want = " or ".join(str(x) for x in n) if isinstance(n, tuple) \
                else str(n)
            self.err(f"{name}() takes {want} argument(s), got {len(args)}")

    def args(self, node, kinds):
        self.arity(node, len(kinds))
        out = []
        for i, (kind, a) in enumerate(zip(kinds, node[2])):
            role = f"{node[1]}() argument {i + 1}"
            if kind in HANDLE_TYPES:
                out.append(self.handle(a, kind, role))
            elif kind == "backend":
                out.append(self.const(a, BACKENDS, role))
            elif kind == "base":
                out.append(self.const(a, BASES, role))
            elif kind == "kind":
                out.append(self.const(a, KINDS, role))
            elif kind == "fd":
                out.append(self.fd(a, role))
            elif kind == "sig":
                out.append(self.sig(a, role))
            elif kind == "num":
                out.append(self.number(a, role))
            elif kind == "hid":
                if a[0] == "num":
                    out.append(f"(lspec_handle_id){a[1]}")
                else:
                    out.append(self.var(a, ("handle id",), role)[0])
            elif kind == "cb":
                out.extend(self.callback(a))
            elif kind == "pid":
                out.append(self.pid(a, role))
            elif kind == "ccb":
                out.extend(self.child_callback(a))
            else:  # pragma: no cover
                raise AssertionError(kind)
        return out

    # --- queries ---

    def query(self, node, role):
        """An integer-valued expression: returns (C expr, is_status)."""
        if node[0] != "call":
            self.err(f"{role}: expected a query such as loop_is_running(l) "
                     f"or count(c), found {describe(node)}")
        name = node[1]
        if name in QUERIES:
            args = self.args(node, QUERIES[name])
            return f"lh_impl->{name}({', '.join(args)})", True
        if name == "count":
            self.arity(node, 1)
            expr, _ = self.var(node[2][0], ("counter",), "count()")
            return f"lh_counter_get(&{expr})", False
        if name == "calls":
            self.arity(node, 2)
            expr, _ = self.var(node[2][0], ("spy",), "calls()")
            m = self.const(node[2][1], SPY_METHODS, "calls() method",
                           allow_int=False)
            return f"lh_spy_calls({expr}, {m})", False
        if name == "warnings":
            self.arity(node, 1)
            cat = self.const(node[2][0], CATEGORIES, "warnings()",
                             allow_int=False)
            return f"lh_warning_count({cat})", False
        if name == "called":
            self.arity(node, 1)
            expr = self.recorder(node[2][0], "called()", bind=False)
            return f"lh_recorder_calls(&{expr})", False
        if name == "returncode":
            self.arity(node, 2)
            expr = self.recorder(node[2][0], "returncode()", bind=False)
            pid = self.pid(node[2][1], "returncode() pid")
            return f"lh_recorder_returncode(&{expr}, {pid})", False
        if name == "sigchld_handled":
            self.arity(node, 0)
            return "lh_sigchld_handled()", False
        if name == "len":
            self.arity(node, 1)
            if node[2][0] != ("name", "trace"):
                self.err("len() only measures the trace: len(trace)")
            return "(long)lh_trace_len()", False
        if name in ALL_OPS:
            self.err(f"{name}() is not a query; it cannot be used as a value")
        self.err(f"unknown query {name!r}")

    def pred(self, node):
        """Returns (prelude C, pred fn, pred arg)."""
        if node == ("name", "none"):
            return "", "NULL", "NULL"
        if node[0] == "ge":
            left, n = node[1], node[2][1]
            if not re.match(r"^[0-9]+$", n):
                self.err("a run_until goal needs a whole number")
            if left[0] == "call" and left[1] == "count":
                self.arity(left, 1)
                # A goal may name a fresh counter (one that nothing will
                # ever increment): it is declared here.
                c = left[2][0]
                if c[0] == "name" and c[1] not in self.vars:
                    self.bind(c[1], "counter")
                expr, _ = self.var(c, ("counter",), "count()")
                return (f"struct lh_goal g_ = {{&{expr}, {n}, NULL}};",
                        "lh_goal_pred", "&g_")
            if left == ("call", "len", [("name", "trace")]):
                return (f"struct lh_goal g_ = {{NULL, {n}, NULL}};",
                        "lh_goal_pred", "&g_")
            if left[0] == "call" and left[1] == "called":
                self.arity(left, 1)
                expr = self.recorder(left[2][0], "called()")
                return (f"struct lh_goal g_ = {{NULL, {n}, &{expr}}};",
                        "lh_goal_pred", "&g_")
        self.err(f"bad run_until goal {describe(node)} (write "
                 "count(c) >= N, called(rec) >= N, len(trace) >= N or "
                 "none)")

    # --- statements ---

    def expectation(self, expect):
        if expect is None:
            return "LSPEC_OK", "NULL"
        status, substr = expect
        if status not in STATUS:
            self.err(f"unknown status {status!r} (one of "
                     f"{', '.join(STATUS)})")
        return STATUS[status], c_string(substr) if substr is not None \
            else "NULL"

    def step(self, st, text, out):
        call, target, expect = st["call"], st["target"], st["expect"]
        name = call[1]
        w = self.where(text)
        want, substr = self.expectation(expect)

        def no_target():
            if target:
                self.err(f"{name}() gives no value to bind to {target!r}")

        def no_expect():
            if expect:
                self.err(f"{name}() takes no '-> STATUS'")

        if name in GETTERS:
            kinds, typ = GETTERS[name]
            args = self.args(call, kinds)
            if name == "watcher_new" and want == "LSPEC_OK":
                # The test needs this kind; a platform that cannot offer it
                # (pidfd on an old kernel) makes it UNRESOLVED.
                a0 = call[2][0]
                if a0[0] == "name" and a0[1] in KINDS:
                    self.kinds.add(a0[1])
            ctype = HANDLE_TYPES[typ]
            out.append("{")
            out.append(f"  {ctype} *o_ = NULL;")
            out.append(f"  int rc_ = lh_impl->{name}("
                       + ", ".join(args + ["&o_"]) + ");")
            if name == "watcher_new" and want == "LSPEC_OK":
                out.append("  if (rc_ == LSPEC_E_UNAVAILABLE) { "
                           "lh_unresolved(\"%s: the platform cannot offer "
                           "this watcher kind: %s\", " + w + ", "
                           "lh_impl->last_error()); return; }")
            out.append(f"  if (!lh_expect_out(rc_, {want}, {substr}, "
                       f"{TRACK_KIND[typ]}, (void *)o_, {w})) return;")
            if target:
                out.append(f"  {self.bind(target, typ)} = o_;")
            out.append("}")
        elif name == "policy_new_custom":
            self.arity(call, 1)
            base = self.const(call[2][0], BASES, "policy_new_custom() base")
            out.append("{")
            out.append("  lspec_policy *o_ = NULL;")
            out.append(f"  int rc_ = lh_impl->policy_new_custom({base}, NULL, "
                       "NULL, &o_);")
            out.append(f"  if (!lh_expect_out(rc_, {want}, {substr}, "
                       f"LH_POLICY, (void *)o_, {w})) return;")
            if target:
                out.append(f"  {self.bind(target, 'policy')} = o_;")
            out.append("}")
        elif name == "policy_new_spy":
            self.arity(call, 2)
            no_expect()
            if not target:
                self.err("policy_new_spy() must be bound: p = "
                         "policy_new_spy(BASE, s)")
            base = self.const(call[2][0], BASES, "policy_new_spy() base")
            s = call[2][1]
            if s[0] != "name":
                self.err("policy_new_spy(): the second argument names the "
                         "new spy")
            if s[1] in self.vars:
                self.err(f"policy_new_spy(): {s[1]!r} is already bound")
            sexpr = self.bind(s[1], "spy")
            pexpr = self.bind(target, "policy")
            out.append("{")
            out.append("  lh_spy *s_ = NULL;")
            out.append("  lspec_policy *o_ = NULL;")
            out.append(f"  if (!lh_spy_policy_new({base}, &s_, &o_, {w})) "
                       "return;")
            out.append(f"  {sexpr} = s_;")
            out.append(f"  {pexpr} = o_;")
            out.append("}")
        elif name == "loop_run_until":
            no_target()
            self.arity(call, 3)
            loop = self.handle(call[2][0], "loop", "loop_run_until() loop")
            prelude, fn, arg = self.pred(call[2][1])
            timeout = self.number(call[2][2], "loop_run_until() timeout")
            out.append("{")
            if prelude:
                out.append("  " + prelude)
            out.append(f"  int rc_ = lh_impl->loop_run_until({loop}, {fn}, "
                       f"{arg}, {timeout});")
            out.append(f"  if (!lh_expect(rc_, {want}, {substr}, {w})) "
                       "return;")
            out.append("}")
        elif name in STATUS_OPS:
            no_target()
            args = self.args(call, STATUS_OPS[name])
            out.append("{")
            out.append(f"  int rc_ = lh_impl->{name}({', '.join(args)});")
            out.append(f"  if (!lh_expect(rc_, {want}, {substr}, {w})) "
                       "return;")
            out.append("}")
        elif name in SCHEDULE_OPS:
            args = self.args(call, SCHEDULE_OPS[name])
            out.append("{")
            out.append("  lspec_handle_id h_ = 0;")
            out.append(f"  int rc_ = lh_impl->{name}("
                       + ", ".join(args + ["&h_"]) + ");")
            out.append(f"  if (!lh_expect(rc_, {want}, {substr}, {w})) "
                       "return;")
            if target:
                out.append("  if (rc_ == LSPEC_OK && !lh_check(h_ != 0, "
                           f"{w}, \"the handle id is 0 (ids are never 0)\"))"
                           " return;")
                out.append(f"  {self.bind(target, 'handle id')} = h_;")
            out.append("}")
        elif name in QUERIES:
            no_target()
            if not expect:
                self.err(f"{name}() is a query: use it in a check "
                         f"(eq({name}(...), N), true(...)) or give "
                         "'-> STATUS'")
            q, _ = self.query(call, name)
            out.append("{")
            out.append(f"  int rc_ = {q};")
            out.append(f"  if (!lh_expect(rc_, {want}, {substr}, {w})) "
                       "return;")
            out.append("}")
        elif name == "pipe":
            no_target()
            no_expect()
            self.arity(call, 2)
            names = []
            for a in call[2]:
                if a[0] != "name":
                    self.err("pipe(r, w) binds two new fd variables")
                names.append(self.bind(a[1], "fd"))
            out.append("{")
            out.append("  int fds_[2];")
            out.append(f"  if (!lh_pipe(fds_, {w})) return;")
            out.append(f"  {names[0]} = fds_[0];")
            out.append(f"  {names[1]} = fds_[1];")
            out.append("}")
        elif name == "write":
            no_target()
            no_expect()
            self.arity(call, 2)
            fd = self.fd(call[2][0], "write() fd")
            data = self.string(call[2][1], "write() bytes")
            out.append(f"if (!lh_write({fd}, {data}, {w})) return;")
        elif name == "raise":
            no_target()
            no_expect()
            self.arity(call, 1)
            sig = self.sig(call[2][0], "raise()")
            out.append(f"if (!lh_check(raise({sig}) == 0, {w}, "
                       "\"raise() failed\")) return;")
        elif name in ("spawn_child", "spawn_sleeper"):
            no_expect()
            if not target:
                self.err(f"{name}() must be bound: k = {name}(...)")
            if name == "spawn_child":
                self.arity(call, 2)
                mode = self.const(call[2][0], CHILD_MODES,
                                  "spawn_child() mode", allow_int=False)
                if mode == "LH_CHILD_SIGNAL":
                    value = self.sig(call[2][1], "spawn_child() signal")
                else:
                    v = call[2][1]
                    if v[0] != "num" or not re.match(r"^[0-9]+$", v[1]) \
                            or int(v[1]) > 255:
                        self.err("spawn_child(): the exit status is a whole "
                                 f"number 0..255, found {describe(v)}")
                    value = v[1]
            else:
                self.arity(call, 0)
                mode, value = "LH_CHILD_SLEEPER", "0"
            out.append("{")
            out.append("  int pid_ = 0;")
            out.append(f"  if (!lh_spawn_child({mode}, {value}, &pid_, {w}))"
                       " return;")
            out.append(f"  {self.bind(target, 'child')} = pid_;")
            out.append("}")
        elif name in ("kill", "reap", "release"):
            no_target()
            no_expect()
            self.arity(call, HELPERS[name])
            k, _ = self.var(call[2][0], ("child",), f"{name}()")
            if name == "kill":
                sig = self.sig(call[2][1], "kill() signal")
                out.append(f"if (!lh_child_kill({k}, {sig}, {w})) return;")
            elif name == "reap":
                out.append(f"if (!lh_child_reap({k}, 5.0, {w})) return;")
            else:
                out.append(f"if (!lh_child_release({k}, {w})) return;")
        elif name == "loop_subprocess_exec":
            a = call[2]
            if len(a) < 3:
                self.err("loop_subprocess_exec(l, 'prog', ['arg', ...,] rec)"
                         " needs a loop, a program and a recorder")
            loop = self.handle(a[0], "loop", "loop_subprocess_exec() loop")
            argv = [self.string(x, "loop_subprocess_exec() argument")
                    for x in a[1:-1]]
            fn, arg = self.child_callback(a[-1])
            out.append("{")
            out.append(f"  const char *const argv_[] = {{{', '.join(argv)}, "
                       "NULL};")
            out.append("  int pid_ = 0;")
            out.append(f"  int rc_ = lh_impl->loop_subprocess_exec({loop}, "
                       f"argv_, {fn}, {arg}, &pid_);")
            out.append("  if (rc_ == LSPEC_OK) lh_track_impl_child(pid_);")
            out.append(f"  if (!lh_expect(rc_, {want}, {substr}, {w})) "
                       "return;")
            out.append("  if (rc_ == LSPEC_OK && !lh_check(pid_ > 0, "
                       f"{w}, \"returned LSPEC_OK but the pid is %d\", "
                       "pid_)) return;")
            if target:
                out.append(f"  {self.bind(target, 'child')} = pid_;")
            out.append("}")
        elif name == "clear_warnings":
            no_target()
            no_expect()
            self.arity(call, 0)
            out.append("lh_clear_warnings();")
        elif name == "tolerate_pidfd_leak":
            no_target()
            no_expect()
            self.arity(call, 0)
            out.append('lh_tolerate_fd_leak("anon_inode:[pidfd]");')
        elif name in CHECKS:
            no_target()
            if expect:
                self.err(f"{name}() is a check; it takes no '-> STATUS'")
            self.check(call, w, out)
        elif name in VALUE_QUERIES:
            self.err(f"{name}() is a value: use it in a check such as "
                     f"eq({name}(...), N)")
        else:
            self.err(f"unknown operation {name!r}")

    def check(self, call, w, out):
        name = call[1]
        self.arity(call, CHECKS[name])
        a = call[2]
        if name in ("same", "not_same"):
            x = self.handle(a[0], "loop", f"{name}()")
            y = self.handle(a[1], "loop", f"{name}()")
            out.append(f"if (!lh_check_same((const void *){x}, "
                       f"(const void *){y}, {int(name == 'same')}, {w})) "
                       "return;")
        elif name in ("null", "not_null"):
            x = self.handle(a[0], "loop", f"{name}()")
            out.append(f"if (!lh_check_null((const void *){x}, "
                       f"{int(name == 'null')}, {w})) return;")
        elif name in ("true", "false", "eq"):
            q, _ = self.query(a[0], f"{name}()")
            if name == "eq":
                if a[1][0] == "name" and a[1][1] in KINDS:
                    n = KINDS[a[1][1]]
                elif a[1][0] == "num" and re.match(r"^-?[0-9]+$", a[1][1]):
                    n = a[1][1]
                else:
                    self.err(f"eq(): expected an integer or a watcher kind, "
                             f"found {describe(a[1])}")
            else:
                n = "1" if name == "true" else "0"
            out.append(f"if (!lh_check_int((long)({q}), {n}, "
                       f"{c_string(describe(a[0]))}, {w})) return;")
        elif name in ("exited", "killed"):
            r = self.recorder(a[0], f"{name}()", bind=False)
            pid = self.pid(a[1], f"{name}() pid")
            if name == "exited":
                v = a[2]
                if v[0] != "num" or not re.match(r"^-?[0-9]+$", v[1]):
                    self.err("exited(rec, k, N): N is the returncode, a "
                             f"whole number; found {describe(v)}")
                rc = v[1]
            else:
                rc = f"-({self.sig(a[2], 'killed() signal')})"
            out.append(f"if (!lh_check_exited(&{r}, {pid}, {rc}, {w})) "
                       "return;")
        elif name == "called_in_loop":
            r = self.recorder(a[0], "called_in_loop()", bind=False)
            loop = self.handle(a[1], "loop", "called_in_loop() loop")
            out.append(f"if (!lh_check_called_in_loop(&{r}, {loop}, {w})) "
                       "return;")
        elif name in ("reaped", "not_reaped"):
            k, _ = self.var(a[0], ("child",), f"{name}()")
            out.append(f"if (!lh_check_reaped({k}, {int(name == 'reaped')}, "
                       f"2.0, {w})) return;")
        elif name == "trace":
            s = self.string(a[0], "trace()")
            out.append(f"if (!lh_check_trace({s}, {w})) return;")
        elif name in ("warned", "not_warned"):
            cat = self.const(a[0], CATEGORIES, f"{name}() category",
                             allow_int=False)
            sub = self.string(a[1], f"{name}() text") if len(a) > 1 \
                else "NULL"
            out.append(f"if (!lh_check_warned({cat}, {sub}, "
                       f"{int(name == 'warned')}, {w})) return;")

    # --- the whole test ---

    def compile(self):
        lines = self.t["steps"].split("\n")
        body = []
        stack = [("body", body, 0)]
        nblocks = 0
        blocks = []
        for no, raw in enumerate(lines, 1):
            self.line = no
            text = strip_comment(raw).strip()
            if not text:
                continue
            st = Parser(tokenize(text, no), no).statement()
            out = stack[-1][1]
            if st["kind"] == "close":
                if len(stack) == 1:
                    self.err("'}' without an open block")
                stack.pop()
                continue
            if st["kind"] in ("thread", "loop"):
                nblocks += 1
                fname = f"{self.prefix}_b{nblocks}"
                w = self.where(text)
                if st["kind"] == "thread":
                    out.append(f"if (!lh_run_in_thread({fname}, ctx, {w})) "
                               "return;")
                else:
                    loop = self.handle(st["loop"], "loop", "in_loop()")
                    out.append(f"if (!lh_run_in_loop({loop}, {fname}, ctx, "
                               f"5.0, {w})) return;")
                blines = []
                blocks.append((fname, blines))
                stack.append((fname, blines, no))
                continue
            self.step(st, text, out)
        if len(stack) > 1:
            self.line = stack[-1][2]
            self.err("block opened here is never closed with '}'")
        if not body and not blocks:
            self.line = 1
            self.err("no steps")
        return self.emit(body, blocks)

    def emit(self, body, blocks):
        ctype = {"policy": "lspec_policy *", "loop": "lspec_loop *",
                 "watcher": "lspec_watcher *", "counter": "lh_counter ",
                 "spy": "lh_spy *", "handle id": "lspec_handle_id ",
                 "fd": "int ", "child": "int ", "recorder": "lh_recorder "}
        p = self.prefix
        out = ["", f"/* {self.t['suite']}::{self.name} - "
               f"{', '.join(self.t['clauses'])} ({self.t['where']}) */",
               f"struct {p}_ctx {{", "  int unused_;"]
        for v in self.order:
            out.append(f"  {ctype[self.vars[v]]}v_{v};")
        out.append("};")
        for fname, _ in blocks:
            out.append(f"static void {fname}(void *vctx);")
        for fname, lines in blocks:
            out.append(f"static void {fname}(void *vctx) {{")
            out.append(f"  struct {p}_ctx *ctx = vctx;")
            out.append("  (void)ctx;")
            out.extend("  " + x for x in "\n".join(lines).split("\n") if x)
            out.append("}")
        out.append(f"static void {p}_body(struct {p}_ctx *ctx) {{")
        out.append("  (void)ctx;")
        out.extend("  " + x for x in "\n".join(body).split("\n") if x)
        out.append("}")
        out.append(f"Test({self.t['suite']}, {self.name}, "
                   f".timeout = {self.t['timeout']!r}, .fini = lh_fini) {{")
        out.append(f"  static struct {p}_ctx ctx;")
        out.append(f"  lh_begin({c_string(self.t['suite'])}, "
                   f"{c_string(self.name)});")
        out.append(f"  {p}_body(&ctx);")
        out.append("  lh_end();")
        out.append("}")
        return "\n".join(out) + "\n"


def compile_steps(test, clauses):
    """C source of one generated test; raises DslError.  The watcher kinds
    the steps create (watcher_new(KIND) expected to succeed) are added to
    test["inferred_kinds"] when the test is a dict that accepts them."""
    comp = Compiler(test)
    src = comp.compile()
    if isinstance(test, dict):
        test.setdefault("inferred_kinds", set()).update(comp.kinds)
    return src
