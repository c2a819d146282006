"""The environment report: names, process start time, packages."""

import os
import subprocess
import sys
import time
import unittest

from giskard_worker_shim import environment
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


if __name__ == "__main__":
    unittest.main()
