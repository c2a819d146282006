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

    def test_start_help_lists_the_documented_options(self):
        result = run("worker", "start", "--help")
        for option in ("-k KEY", "-u URL", "--name NAME", "-d", "--hf-token"):
            self.assertIn(option, result.stdout)

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

    def test_start_requires_a_name(self):
        result = run("worker", "start", "-k", "k")
        self.assertEqual(result.returncode, 2)
        self.assertIn("--name", result.stderr)


if __name__ == "__main__":
    unittest.main()
