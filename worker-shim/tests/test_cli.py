"""The command line as users see it."""

import os
import subprocess
import sys
import tempfile
import unittest

import giskard_worker_shim
from tests.support import TIMEOUT, shim_env


def run(*args):
    return subprocess.run([sys.executable, "-m", "giskard_worker_shim"] + list(args),
                          env=shim_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=TIMEOUT)


class CliTest(unittest.TestCase):
    def test_version(self):
        result = run("--version")
        self.assertEqual((result.returncode, result.stdout),
                         (0, "giskard-worker-shim %s\n" % giskard_worker_shim.__version__))

    def test_worker_help(self):
        result = run("worker", "--help")
        self.assertEqual(result.returncode, 0)
        self.assertIn("usage: python -m giskard_worker_shim worker", result.stdout)
        for action in ("start", "stop", "logs", "GSK_HOME"):
            self.assertIn(action, result.stdout)

    def test_help_shows_the_giskard_command(self):
        for args in (["--help"], ["worker", "--help"]):
            result = run(*args)
            self.assertEqual(result.returncode, 0)
            self.assertIn("giskard worker start -k KEY -u http://HOST:40051 --name my-laptop -d",
                          result.stdout)
            self.assertIn("`giskard`, `giskard-worker` and `python -m giskard_worker_shim` are "
                          "the same command", result.stdout)

    def test_start_help_lists_the_documented_options(self):
        result = run("worker", "start", "--help")
        self.assertEqual(result.returncode, 0)
        text = " ".join(result.stdout.split())
        for option in ("-k KEY", "-u URL", "--name NAME", "-d", "--hf-token", "-h HOST",
                       "-p PORT", "--ca-file PATH", "--help", "(default: http://localhost:40051)",
                       "(default: this machine's host name"):
            self.assertIn(option, text)

    def test_stop_help_and_its_first_generation_flags(self):
        result = run("worker", "stop", "--help")
        self.assertEqual(result.returncode, 0)
        for option in ("--name NAME", "-u URL", "-h HOST", "-p PORT", "-a, --all"):
            self.assertIn(option, result.stdout)

    def test_h_is_the_host_for_start_and_stop(self):
        for action in ("start", "stop"):
            result = run("worker", action, "-h")
            self.assertEqual(result.returncode, 2)
            self.assertIn("-h/--host: expected one argument", result.stderr)
        self.assertIn("usage:", run("worker", "logs", "-h").stdout)

    def test_url_and_host_are_exclusive(self):
        for action in (["start", "-k", "k"], ["stop"]):
            result = run("worker", *action, "-u", "http://a:1", "-p", "2")
            self.assertEqual(result.returncode, 2)
            self.assertIn("either as -u URL or as -h HOST -p PORT, not both", result.stderr)

    def test_bad_ca_file_is_a_usage_error(self):
        with tempfile.TemporaryDirectory() as home:
            missing = os.path.join(home, "missing.pem")
            result = subprocess.run(
                [sys.executable, "-m", "giskard_worker_shim", "worker", "start", "-k", "k", "-u",
                 "https://127.0.0.1:1", "--ca-file", missing], env=shim_env(GSK_HOME=home),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                timeout=TIMEOUT)
        self.assertEqual(result.returncode, 2)
        self.assertIn("cannot use --ca-file %s" % missing, result.stderr)

    def test_no_command_prints_help(self):
        for args in ([], ["worker"]):
            result = run(*args)
            self.assertEqual(result.returncode, 2)
            self.assertIn("usage:", result.stdout)

    def test_supervisor_commands_are_hidden(self):
        usage = run("--help").stdout
        for command in ("serve-managed", "serve-template", "write-packages"):
            self.assertNotIn(command, usage)

    def test_write_packages_usage(self):
        for args in ([], ["a", "b"], ["--help"]):
            result = run("write-packages", *args)
            self.assertEqual(result.returncode, 2)
            self.assertIn("usage:", result.stderr)
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "missing", "packages.json")
            result = run("write-packages", path)
            self.assertEqual(result.returncode, 1)
            self.assertIn("cannot write %s" % path, result.stderr)

    def test_bad_name(self):
        result = run("worker", "start", "-k", "k", "--name", "a/b")
        self.assertEqual(result.returncode, 2)
        self.assertIn("invalid worker name 'a/b'", result.stderr)


if __name__ == "__main__":
    unittest.main()
