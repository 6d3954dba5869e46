#!/usr/bin/env python3
"""Unit tests of the generator: version ranges, tags, the step language."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gen  # noqa: E402
from dsl import DslError, c_string, compile_steps  # noqa: E402


def test(steps, name="t"):
    return {"name": name, "suite": "loop", "path": "x.toml", "where": "x.toml",
            "clauses": ["LOOP-X-001"], "timeout": 10.0, "steps": steps,
            "steps_line": 10}


class Versions(unittest.TestCase):
    def test_forms(self):
        self.assertEqual(gen.parse_versions("3.8-3.12"), (8, 12))
        self.assertEqual(gen.parse_versions("3.12"), (12, 12))
        self.assertEqual(gen.parse_versions("3.11-"), (11, 12))
        self.assertEqual(gen.parse_versions("-3.10"), (8, 10))

    def test_bad(self):
        for bad in ("3.12-3.8", "3.7", "3.13", "-", "", "3.8-3.9-3.10", "4.1",
                    "3.8 - 3.9x", 38):
            with self.assertRaises(ValueError, msg=repr(bad)):
                gen.parse_versions(bad)


class Tags(unittest.TestCase):
    def test_parse(self):
        t = gen.parse_tag(" test: a_b clauses: [LOOP-A-001, LOOP-B-002] "
                          "caps: [readers] versions: 3.11- timeout: 5 ")
        self.assertEqual(t, {"test": "a_b",
                             "clauses": ["LOOP-A-001", "LOOP-B-002"],
                             "caps": ["readers"], "versions": "3.11-",
                             "timeout": "5"})

    def test_multiline(self):
        t = gen.parse_tag("\n test: x\n clauses: [LOOP-A-001,\n LOOP-B-001]\n")
        self.assertEqual(t["clauses"], ["LOOP-A-001", "LOOP-B-001"])

    def test_unknown_key(self):
        with self.assertRaises(ValueError):
            gen.parse_tag("test: x colour: blue")


class Steps(unittest.TestCase):
    def test_getter_and_expect(self):
        c = compile_steps(test("x = get_event_loop() -> RUNTIME 'no loop'"), {})
        self.assertIn("lh_impl->get_event_loop(&o_)", c)
        self.assertIn('lh_expect_out(rc_, LSPEC_E_RUNTIME, "no loop", LH_LOOP',
                      c)
        self.assertIn('"x.toml:10: x = get_event_loop() -> RUNTIME', c)

    def test_wrong_kind_is_cast(self):
        c = compile_steps(test("p = get_event_loop_policy()\n"
                               "set_event_loop(p) -> ERROR"), {})
        self.assertIn("lh_impl->set_event_loop((lspec_loop *)(void *)ctx->v_p)",
                      c)
        self.assertIn("LH_ANY_ERROR", c)

    def test_blocks(self):
        c = compile_steps(test("l = new_event_loop()\nin_loop(l) {\n"
                               "  in_thread {\n    x = get_running_loop() -> RUNTIME\n"
                               "  }\n}\n"), {})
        self.assertIn("lh_run_in_loop(ctx->v_l, lt_t_b1, ctx, 5.0", c)
        self.assertIn("lh_run_in_thread(lt_t_b2, ctx", c)

    def test_callbacks_and_goals(self):
        c = compile_steps(test(
            "l = new_event_loop()\n"
            "h = loop_call_soon(l, c)\n"
            "loop_call_later(l, 0.5, mark('a'))\n"
            "loop_call_soon(l, stop(l))\n"
            "loop_cancel(l, h)\n"
            "loop_run_until(l, count(c) >= 2, 5)\n"
            "loop_run_until(l, len(trace) >= 1, 5)\n"
            "loop_run_until(l, none, 0.1)\n"
            "eq(count(c), 0)\ntrace('a')\n"), {})
        self.assertIn("lh_counter_cb, (void *)&ctx->v_c, &h_", c)
        self.assertIn('lh_mark_cb, (void *)"a"', c)
        self.assertIn("lh_stop_cb, (void *)ctx->v_l", c)
        self.assertIn("struct lh_goal g_ = {&ctx->v_c, 2, NULL};", c)
        self.assertIn("struct lh_goal g_ = {NULL, 1, NULL};", c)
        self.assertIn("loop_run_until(ctx->v_l, NULL, NULL, 0.1)", c)

    def test_spy_and_warnings(self):
        c = compile_steps(test(
            "p = policy_new_spy(DEFAULT, s)\n"
            "eq(calls(s, new_event_loop), 1)\n"
            "warned(DEPRECATION, 'There is')\nnot_warned(RUNTIME)\n"
            "eq(warnings(DEPRECATION), 1)\n"), {})
        self.assertIn("lh_spy_policy_new(LSPEC_POLICY_BASE_DEFAULT", c)
        self.assertIn("lh_spy_calls(ctx->v_s, LH_SPY_NEW_EVENT_LOOP)", c)
        self.assertIn('lh_check_warned(LSPEC_WARN_DEPRECATION, "There is", 1',
                      c)

    def test_signals_and_fds(self):
        c = compile_steps(test(
            "l = new_event_loop()\npipe(r, w)\nloop_add_reader(l, r, c)\n"
            "write(w, 'x')\neq(loop_remove_reader(l, r), 1)\n"
            "loop_add_signal_handler(l, SIGKILL, c) -> RUNTIME\n"
            "loop_add_signal_handler(l, NSIG, c) -> VALUE\nraise(SIGUSR1)\n"
            "loop_remove_reader(l, -1) -> VALUE\n"), {})
        self.assertIn("lh_impl->loop_add_signal_handler(ctx->v_l, SIGKILL", c)
        self.assertIn("raise(SIGUSR1)", c)

    def test_children_and_recorders(self):
        t = test(
            "w = watcher_new(THREADED)\nl = new_event_loop()\n"
            "k = spawn_child(EXIT, 3)\nd = spawn_child(SIGNAL, SIGKILL)\n"
            "g = spawn_child(GATED, 7)\ns = spawn_sleeper()\n"
            "in_loop(l) {\n  watcher_add_child_handler(w, k, rec)\n}\n"
            "release(g)\nkill(s, SIGTERM)\nreap(d)\n"
            "loop_run_until(l, called(rec) >= 1, 5)\n"
            "exited(rec, k, 3)\nkilled(rec, s, SIGTERM)\n"
            "eq(called(rec), 1)\neq(returncode(rec, k), 3)\n"
            "called_in_loop(rec, l)\nreaped(k)\nnot_reaped(g)\n"
            "eq(watcher_remove_child_handler(w, k), 0)\n"
            "watcher_add_child_handler(w, 1, NULL) -> TYPE\n"
            "true(sigchld_handled())\n"
            "p = loop_subprocess_exec(l, '/bin/sh', '-c', 'exit 3', rec)\n"
            "x = watcher_new(PIDFD) -> UNSUPPORTED\n")
        c = compile_steps(t, {})
        self.assertEqual(t["inferred_kinds"], {"THREADED"})
        self.assertIn("lh_spawn_child(LH_CHILD_EXIT, 3, &pid_", c)
        self.assertIn("lh_spawn_child(LH_CHILD_SIGNAL, SIGKILL, &pid_", c)
        self.assertIn("lh_spawn_child(LH_CHILD_SLEEPER, 0, &pid_", c)
        self.assertIn("lh_impl->watcher_add_child_handler(ctx->v_w, "
                      "ctx->v_k, lh_record_cb, (void *)&ctx->v_rec)", c)
        self.assertIn("struct lh_goal g_ = {NULL, 1, &ctx->v_rec};", c)
        self.assertIn("lh_check_exited(&ctx->v_rec, ctx->v_s, -(SIGTERM)", c)
        self.assertIn("lh_check_reaped(ctx->v_g, 0, 2.0", c)
        self.assertIn('{"/bin/sh", "-c", "exit 3", NULL}', c)
        self.assertIn("lh_track_impl_child(pid_)", c)
        self.assertIn("LSPEC_E_UNAVAILABLE", c)
        self.assertIn("lh_recorder v_rec;", c)

    def errors(self, steps):
        with self.assertRaises(DslError) as cm:
            compile_steps(test(steps), {})
        return cm.exception

    def test_rejections(self):
        cases = {
            "frob(l)": "unknown operation 'frob'",
            "loop_close(l)": "unknown variable 'l'",
            "x = get_event_loop() -> NOPE": "unknown status",
            "in_thread {": "never closed",
            "}": "without an open block",
            "l = new_event_loop(1)": "takes 0 argument",
            "l = new_event_loop()\nl = get_event_loop_policy()":
                "cannot now hold",
            "l = new_event_loop()\nloop_is_running(l)": "is a query",
            "count(c)": "is a value",
            "l = new_event_loop()\nloop_close(l) extra": "unexpected",
            "x = loop_close(y)": "gives no value",
            "l = new_event_loop()\nx = loop_close(l)": "gives no value",
            "l = new_event_loop()\neq(count(c), 1)":
                "unknown variable 'c'",
            "l = new_event_loop()\nloop_run_until(l, count(l) >= 1, 5)":
                "'l' is a loop, expected counter",
            "l = new_event_loop()\nloop_add_signal_handler(l, SIGFOO, c)":
                "expected a signal name",
            "write(1, 'x'": "expected ')'",
            "x = get_event_loop() -> RUNTIME 'unterminated":
                "unterminated string",
            "trace = new_event_loop()": "reserved",
            "spawn_child(EXIT, 3)": "must be bound",
            "k = spawn_child(EXIT, 300)": "0..255",
            "k = spawn_child(LATER, 3)": "expected one of EXIT",
            "k = spawn_child(SIGNAL, SIGFOO)": "expected a signal name",
            "l = new_event_loop()\nkill(l, SIGKILL)":
                "'l' is a loop, expected child",
            "w = watcher_new(SAFE)\nwatcher_add_child_handler(w, x, r)":
                "unknown variable 'x'",
            "w = watcher_new(SAFE)\nk = spawn_sleeper()\n"
            "watcher_add_child_handler(w, k, c)\nloop_add_reader(w, 1, c)":
                "'c' is a recorder, not a counter",
            "k = spawn_sleeper()\nexited(nobody, k, 1)":
                "unknown variable 'nobody'",
            "k = spawn_sleeper()\nexited(r, k, x)": "unknown variable 'r'",
            "l = new_event_loop()\nloop_subprocess_exec(l, r)":
                "needs a loop, a program and a recorder",
            "l = new_event_loop()\nloop_subprocess_exec(l, 7, r)":
                "expected a 'string'",
            "l = new_event_loop()\nloop_run_until(l, called(l) >= 1, 5)":
                "'l' is a loop, not a recorder",
        }
        for steps, want in cases.items():
            e = self.errors(steps)
            self.assertIn(want, e.msg, msg=f"{steps!r}: {e.msg}")

    def test_error_line(self):
        e = self.errors("l = new_event_loop()\n\n# comment\nfrob(l)")
        self.assertEqual(e.line, 4)


class CString(unittest.TestCase):
    def test_escapes(self):
        self.assertEqual(c_string('a"b\\c\n'), '"a\\"b\\\\c\\n"')


if __name__ == "__main__":
    unittest.main(verbosity=1)
