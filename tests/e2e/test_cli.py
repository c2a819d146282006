"""End-to-end: the `giskard-supervisor` client subcommands against a running daemon, over the
admin socket and remotely (--url/--token and the GISKARD_SUPERVISOR_* variables), with the exit
codes scripts rely on: 0 ok, 2 usage, 3 unreachable, 4 not found, 5 conflict, 6 invalid input,
7 authentication."""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness as h  # noqa: E402
from harness import HUB_KERNEL, stable  # noqa: E402


class CliTest(h.DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.daemon = cls.new_daemon().start()
        # An empty HOME, so that the CLI's default search finds nothing of the machine's own.
        cls.home = os.path.join(cls.tmp, "home")
        os.makedirs(cls.home)

    def tearDown(self):
        self.assertHealthy(self.daemon)

    def run_cli(self, *args, env=None, input=None):
        full_env = h.clean_env(HOME=self.home)
        full_env.pop("XDG_STATE_HOME", None)
        full_env.update(env or {})
        return h.run_cli(*args, env=full_env, input=input)

    def cli(self, *args, expect=0, **kw):
        """Runs the CLI over the admin socket; asserts the exit code."""
        proc = self.run_cli("--socket", self.daemon.admin_socket, *args, **kw)
        self.assertEqual(proc.returncode, expect,
                         f"{args}: exit {proc.returncode}\nstdout: {proc.stdout}\n"
                         f"stderr: {proc.stderr}")
        return proc

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def rest_kernel(self, name):
        return self.daemon.get(f"/api/v1/kernels/{name}")

    def assertNothingWritten(self, count_before, last_event):
        self.assertEqual(self.daemon.kernel_count(), count_before)
        new = [e for e in self.daemon.events(after=last_event)
               if e["subject"].startswith("kernel/")]
        self.assertEqual(new, [])

    # --- kernels create ----------------------------------------------------------------------

    def test_create_with_python_and_requirements_file(self):
        req = self.write("requirements.txt",
                         "# the model's dependencies\nnumpy<2\n\nscikit-learn==1.3.2  # pinned\n")
        p = self.cli("kernels", "create", "cli-flags", "--python", "3.11", "-r", req)
        self.assertIn("cli-flags", p.stdout)
        r = self.rest_kernel("cli-flags")
        self.assertEqual(r.status, 200, r)
        k = r.json
        self.assertEqual(k["pythonVersion"], "3.11")
        self.assertEqual(k["type"], "PROCESS")
        self.assertIn(k["status"], h.KERNEL_STATUSES)
        self.assertEqual(len(k["requestedDependencies"]), 2, k)
        self.assertTrue(any(d.startswith("numpy") for d in k["requestedDependencies"]), k)
        self.assertIn(k["envHash"], p.stdout)
        events = self.daemon.events(subject="kernel/cli-flags")
        self.assertEqual([(e["kind"], e["actor"]) for e in events if e["kind"] == "kernel.created"],
                         [("kernel.created", "admin-socket")])
        # The same command again changes nothing and still succeeds.
        p = self.cli("kernels", "create", "cli-flags", "--python", "3.11", "-r", req)
        self.assertEqual(stable(self.rest_kernel("cli-flags").json), stable(k))
        self.cli("kernels", "delete", "cli-flags")

    def test_create_from_the_hub_document(self):
        path = self.write("kernel.json", json.dumps(HUB_KERNEL))
        p = self.cli("kernels", "create", "-f", path)
        self.assertIn("my-kernel", p.stdout)
        # The CLI posted the document as is: the same document over REST is an identical retry.
        r = self.daemon.post("/api/v1/kernels", HUB_KERNEL)
        self.assertEqual(r.status, 200, r)
        shown = self.rest_kernel("my-kernel").json
        self.assertEqual(shown["frozenDependencies"], HUB_KERNEL["frozenDependencies"])
        self.assertEqual(shown["version"], "2.14.0")
        # Again with the CLI: exit 0, nothing changed.
        self.cli("kernels", "create", "-f", path)
        self.assertEqual(stable(self.rest_kernel("my-kernel").json), stable(shown))
        # From stdin, with the name overridden.
        self.cli("kernels", "create", "hub-from-stdin", "-f", "-", input=json.dumps(HUB_KERNEL))
        other = self.rest_kernel("hub-from-stdin").json
        self.assertEqual(other["envHash"], shown["envHash"])
        # --json prints the daemon's answer.
        p = self.cli("kernels", "create", "-f", path, "--json")
        self.assertEqual(json.loads(p.stdout)["name"], "my-kernel")
        self.cli("kernels", "delete", "my-kernel")
        self.cli("kernels", "delete", "hub-from-stdin")

    # --- list, show, delete ------------------------------------------------------------------

    def test_list_table_and_json(self):
        self.cli("kernels", "create", "list-b", "--python", "3.11", "--requirement", "numpy")
        self.cli("kernels", "create", "list-a", "--python", "3.10")
        p = self.cli("kernels", "list")
        lines = p.stdout.splitlines()
        self.assertTrue(lines, p.stdout)
        for column in ("NAME", "TYPE", "PYTHON", "STATUS"):
            self.assertIn(column, lines[0])
        rows = {line.split()[0]: line for line in lines[1:] if line.strip()}
        self.assertIn("list-a", rows)
        self.assertIn("list-b", rows)
        self.assertIn("3.10", rows["list-a"])
        self.assertRegex(rows["list-b"], "|".join(h.KERNEL_STATUSES))
        self.assertLess(p.stdout.index("list-a"), p.stdout.index("list-b"))
        p = self.cli("kernels", "list", "--json")
        listed = json.loads(p.stdout)
        rest = self.daemon.get("/api/v1/kernels").json
        self.assertEqual(listed["count"], rest["count"])
        self.assertEqual([stable(k) for k in listed["kernels"]],
                         [stable(k) for k in rest["kernels"]])
        self.cli("kernels", "delete", "list-a")
        self.cli("kernels", "delete", "list-b")

    def test_show(self):
        self.cli("kernels", "create", "show-me", "--python", "3.12", "--requirement", "pandas<3")
        rest = self.rest_kernel("show-me").json
        p = self.cli("kernels", "show", "show-me")
        self.assertIn("show-me", p.stdout)
        self.assertIn("3.12", p.stdout)
        self.assertRegex(p.stdout, "|".join(h.KERNEL_STATUSES))
        self.assertIn("pandas", p.stdout)
        self.assertIn(rest["envHash"], p.stdout)
        p = self.cli("kernels", "show", "show-me", "--json")
        self.assertEqual(stable(json.loads(p.stdout)), stable(rest))
        self.cli("kernels", "delete", "show-me")

    def test_delete(self):
        self.cli("kernels", "create", "delete-me", "--python", "3.11")
        p = self.cli("kernels", "delete", "delete-me")
        self.assertIn("delete-me", p.stdout)
        self.assertEqual(self.rest_kernel("delete-me").status, 404)
        p = self.cli("kernels", "delete", "delete-me", expect=4)
        self.assertIn("delete-me", p.stderr)

    # --- status and version ------------------------------------------------------------------

    def test_status(self):
        p = self.cli("status")
        self.assertIn(self.daemon.admin_socket, p.stdout)
        self.assertIn(str(self.daemon.pid), p.stdout)
        p = self.cli("status", "--json")
        status = json.loads(p.stdout)
        self.assertEqual(status["pid"], self.daemon.pid)
        self.assertEqual(status["listen"], f"127.0.0.1:{self.daemon.port}")

    def test_version(self):
        p = self.cli("version")
        versions = re.findall(r"\d+\.\d+\.\d+", p.stdout)
        self.assertEqual(len(versions), 2, p.stdout)  # the client's and the daemon's
        self.assertEqual(versions[0], versions[1])
        p = self.cli("version", "--json")
        v = json.loads(p.stdout)
        self.assertEqual(v["client"]["version"], v["daemon"]["version"])
        self.assertTrue(v["daemon"]["reachable"])
        # Without a daemon, version still prints the client's and exits 0.
        p = self.run_cli("--socket", os.path.join(self.tmp, "nothing.sock"), "version")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(versions[0], p.stdout)
        self.assertIn("not reachable", p.stdout)

    # --- exit codes ---------------------------------------------------------------------------

    def test_exit_4_for_a_missing_kernel(self):
        p = self.cli("kernels", "show", "no-such-kernel", expect=4)
        self.assertIn("no-such-kernel", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_exit_5_for_a_duplicate_with_another_document(self):
        self.cli("kernels", "create", "dup", "--python", "3.11")
        count, last = self.daemon.kernel_count(), self.daemon.last_event_id()
        p = self.cli("kernels", "create", "dup", "--python", "3.10", expect=5)
        self.assertIn("dup", p.stderr)
        self.assertNothingWritten(count, last)
        self.assertEqual(self.rest_kernel("dup").json["pythonVersion"], "3.11")
        self.cli("kernels", "delete", "dup")

    def test_exit_6_for_invalid_input(self):
        count, last = self.daemon.kernel_count(), self.daemon.last_event_id()
        bad_req = self.write("bad-requirements.txt", "numpy\n--index-url http://x\n")
        p = self.cli("kernels", "create", "bad-req", "--python", "3.11", "-r", bad_req, expect=6)
        self.assertIn("--index-url", p.stderr)
        p = self.cli("kernels", "create", "../x", "--python", "3.11", expect=6)
        self.assertIn("../x", p.stderr)
        self.cli("kernels", "create", "bad-python", "--python", "2.7", expect=6)
        not_json = self.write("not-json.json", "{ this is not json")
        self.cli("kernels", "create", "-f", not_json, expect=6)
        self.assertNothingWritten(count, last)

    def test_exit_3_when_no_daemon(self):
        p = self.run_cli("--socket", os.path.join(self.tmp, "nothing.sock"), "kernels", "list")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("nothing.sock", p.stderr)
        port = h.free_port()
        p = self.run_cli("--url", f"http://127.0.0.1:{port}", "--token", "x" * 32, "status")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn(str(port), p.stderr)
        # With no flag at all and an empty HOME, the default search finds no socket.
        p = self.run_cli("kernels", "list")
        self.assertEqual(p.returncode, 3, p.stderr)

    def test_exit_7_for_a_wrong_or_missing_token(self):
        count, last = self.daemon.kernel_count(), self.daemon.last_event_id()
        url = self.daemon.url
        p = self.run_cli("--url", url, "--token", "0" * 64, "kernels", "list")
        self.assertEqual(p.returncode, 7, p.stderr)
        self.assertNotIn(self.daemon.token, p.stderr + p.stdout)
        p = self.run_cli("--url", url, "--token", "0" * 64, "kernels", "create", "-f",
                         self.write("k.json", json.dumps(dict(HUB_KERNEL, name="unauth"))))
        self.assertEqual(p.returncode, 7, p.stderr)
        p = self.run_cli("--url", url, "kernels", "list")  # no token anywhere
        self.assertEqual(p.returncode, 7, p.stderr)
        p = self.run_cli("kernels", "list", env={"GISKARD_SUPERVISOR_URL": url,
                                                 "GISKARD_SUPERVISOR_TOKEN": "wrong" * 8})
        self.assertEqual(p.returncode, 7, p.stderr)
        self.assertNothingWritten(count, last)

    def test_exit_2_for_usage_errors(self):
        for args in [("kernels",), ("kernels", "create"), ("kernels", "frobnicate"),
                     ("kernels", "list", "--no-such-flag"), ("kernels", "show"),
                     ("--url", "ftp://127.0.0.1:1", "kernels", "list"),
                     ("kernels", "create", "x", "--python", "3.11", "-r",
                      os.path.join(self.tmp, "missing.txt")),
                     ("kernels", "create", "x", "-f", os.path.join(self.tmp, "missing.json"))]:
            with self.subTest(args=args):
                p = self.run_cli("--socket", self.daemon.admin_socket, *args)
                self.assertEqual(p.returncode, 2, f"{args}: {p.stdout} {p.stderr}")

    # --- connection modes ---------------------------------------------------------------------

    def test_remote_mode_with_url_and_token(self):
        d = self.daemon
        base = ("--url", d.url, "--token", d.token)
        self.assertEqual(self.run_cli(*base, "kernels", "create", "remote", "--python",
                                      "3.11").returncode, 0)
        p = self.run_cli(*base, "kernels", "list", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("remote", [k["name"] for k in json.loads(p.stdout)["kernels"]])
        # Options after the subcommand work too.
        p = self.run_cli("kernels", "show", "remote", "--json", *base)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["name"], "remote")
        events = d.events(subject="kernel/remote")
        self.assertEqual([(e["kind"], e["actor"]) for e in events if e["kind"] == "kernel.created"],
                         [("kernel.created", "rest")])
        # The token from a file, and from the state directory.
        token_file = self.write("token.txt", d.token + "\n")
        p = self.run_cli("--url", d.url, "--token-file", token_file, "status", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.run_cli("--url", d.url, "--state-dir", d.state_dir, "status", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["pid"], d.pid)
        p = self.run_cli(*base, "kernels", "delete", "remote")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_remote_mode_with_environment_variables(self):
        d = self.daemon
        env = {"GISKARD_SUPERVISOR_URL": d.url, "GISKARD_SUPERVISOR_TOKEN": d.token}
        p = self.run_cli("kernels", "create", "from-env", "--python", "3.11", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.run_cli("kernels", "show", "from-env", "--json", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["name"], "from-env")
        p = self.run_cli("status", "--json", env=env)
        self.assertEqual(json.loads(p.stdout)["pid"], d.pid)
        # --url on the command line wins over the environment.
        bad_env = dict(env, GISKARD_SUPERVISOR_URL=f"http://127.0.0.1:{h.free_port()}")
        p = self.run_cli("--url", d.url, "kernels", "show", "from-env", env=bad_env)
        self.assertEqual(p.returncode, 0, p.stderr)
        # The admin socket from the environment, with no token at all.
        p = self.run_cli("kernels", "delete", "from-env",
                         env={"GISKARD_SUPERVISOR_SOCKET": d.admin_socket})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.rest_kernel("from-env").status, 404)

    def test_state_dir_finds_the_admin_socket(self):
        p = self.run_cli("--state-dir", self.daemon.state_dir, "status", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["pid"], self.daemon.pid)


if __name__ == "__main__":
    h.main()
