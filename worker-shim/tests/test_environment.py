"""The environment report: names, process start time, packages."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock

from giskard_worker_shim import environment
from giskard_worker_shim.dispatch import default_dispatcher
from tests.support import TIMEOUT


class EnvironmentTest(unittest.TestCase):
    def test_normalize_name(self):
        for raw, normalized in (("Foo.Bar_baz", "foo-bar-baz"), ("scikit_learn", "scikit-learn"),
                                ("A--B__C..D", "a-b-c-d"), ("numpy", "numpy")):
            self.assertEqual(environment.normalize_name(raw), normalized)

    @unittest.skipUnless(os.path.exists("/proc/self/stat"), "needs Linux /proc")
    def test_process_start_time(self):
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        mine = environment.process_start_time()
        self.assertIsInstance(mine, float)
        self.assertLessEqual(mine, uptime + 0.01)
        self.assertEqual(environment.process_start_time(os.getpid()), mine)
        # A process started later has a later start time; a missing pid has none.
        child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                                 stdin=subprocess.PIPE)
        try:
            time.sleep(0.02)
            self.assertGreaterEqual(environment.process_start_time(child.pid), mine)
        finally:
            child.communicate(timeout=TIMEOUT)
        self.assertIsNone(environment.process_start_time(2 ** 22 + 12345))

    def test_command_name_with_spaces_and_parentheses(self):
        # Field 2 of /proc/PID/stat may contain ") (": parsing must start after the last ")".
        stat = "123 (a) (b c) S 1 123 123 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 4242 0 0"
        self.assertEqual(environment.start_ticks(stat), 4242)
        self.assertIsNone(environment.start_ticks("123 (short) S 1"))

    def test_packages_sorted_unique_normalized(self):
        packages = environment.installed_packages()
        names = [p["name"] for p in packages]
        self.assertEqual(names, sorted(set(names)))
        for package in packages:
            self.assertEqual(set(package), {"name", "version"})
            self.assertEqual(package["name"], environment.normalize_name(package["name"]))

    def test_collect(self):
        env = environment.collect()
        self.assertEqual(env["pid"], os.getpid())
        self.assertEqual(env["pythonExecutable"], sys.executable)
        self.assertEqual(env["shimVersion"], "0.1.0")



class PackagesFileTest(unittest.TestCase):
    """.gsk-packages.json: written once per environment, read by hello."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="shim-packages-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, environment.PACKAGES_FILE)

    def write(self, text):
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(text)

    def test_write_then_read(self):
        written = environment.write_packages(self.path)
        self.assertEqual(written, environment.installed_packages())
        with open(self.path, encoding="utf-8") as f:
            self.assertEqual(json.load(f), written)
        self.assertEqual(os.listdir(self.dir), [environment.PACKAGES_FILE])  # no temp file
        self.assertEqual(environment.read_packages(self.path), written)
        environment.write_packages(self.path)  # replaces the file
        self.assertEqual(os.listdir(self.dir), [environment.PACKAGES_FILE])

    def test_write_failure_leaves_nothing(self):
        with self.assertRaises(OSError):
            environment.write_packages(os.path.join(self.dir, "missing", "p.json"))
        os.chmod(self.dir, 0o500)
        self.addCleanup(os.chmod, self.dir, 0o700)
        if os.access(self.dir, os.W_OK):  # root writes anyway
            return
        with self.assertRaises(OSError):
            environment.write_packages(self.path)
        self.assertEqual(os.listdir(self.dir), [])

    def test_missing_or_bad_files(self):
        self.assertIsNone(environment.read_packages(self.path))
        for text in ("", "not json", '{"a": 1}', '[{"name": "x"}]', '[["x", "1.0"]]',
                     '[{"name": "x", "version": 1}]'):
            with self.subTest(text=text):
                self.write(text)
                with self.assertLogs("giskard_worker_shim", "WARNING") as logs:
                    self.assertIsNone(environment.read_packages(self.path))
                self.assertIn("is not a package list", logs.output[0])
        self.write('[{"name": "x", "version": "1.0", "extra": true}]')
        self.assertEqual(environment.read_packages(self.path), [{"name": "x", "version": "1.0"}])

    def test_collect_reads_sys_prefix_unless_scanning(self):
        fake = [{"name": "fake-package", "version": "9.9"}]
        self.write(json.dumps(fake))
        with mock.patch.object(sys, "prefix", self.dir):
            self.assertEqual(environment.packages_file(), self.path)
            self.assertEqual(environment.collect()["packages"], fake)
            scanned = environment.collect(scan=True)["packages"]
            self.assertEqual(scanned, environment.installed_packages())
            # The `environment` request scans afresh.
            handler = default_dispatcher().lookup("environment")
            self.assertEqual(handler({})["packages"], scanned)
            os.unlink(self.path)
            self.assertEqual(environment.collect()["packages"], scanned)


if __name__ == "__main__":
    unittest.main()
