#include "supervisor/envs/pip_command.h"

#include <algorithm>

#include <gtest/gtest.h>

namespace gsk::envs {
namespace {

bool Has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

PipInputs Inputs() {
  PipInputs in;
  in.venv_dir = "/state/envs/abc";
  in.pip_wheel = "/usr/share/python-wheels/pip-23.0.1-py3-none-any.whl";
  in.requirements_file = "/state/logs/abc.requirements.txt";
  in.shim_wheel = "/usr/lib/giskard-supervisor/shim.whl";
  in.cache_dir = "/state/cache/pip";
  in.scratch_dir = "/state/tmp";
  return in;
}

TEST(PipCommandTest, InstallRunsPipFromItsWheelWithTheVenvPython) {
  PipInputs in = Inputs();
  in.index.index_url = "http://127.0.0.1:8080/simple";
  in.index.extra_index_urls = {"http://127.0.0.1:8081/simple"};
  in.index.find_links = {"/srv/wheels"};
  in.index.trusted_hosts = {"127.0.0.1"};
  Command c = PipInstallCommand(in);
  EXPECT_EQ(c.argv[0], "/state/envs/abc/bin/python");
  EXPECT_EQ(c.argv[3], "/usr/share/python-wheels/pip-23.0.1-py3-none-any.whl/pip");
  EXPECT_EQ(c.argv[4], "install");
  EXPECT_TRUE(Has(c.argv, "http://127.0.0.1:8080/simple"));
  EXPECT_TRUE(Has(c.argv, "--extra-index-url"));
  EXPECT_TRUE(Has(c.argv, "/srv/wheels"));
  EXPECT_TRUE(Has(c.argv, "--trusted-host"));
  EXPECT_TRUE(Has(c.argv, "/state/cache/pip"));
  EXPECT_TRUE(Has(c.argv, "--no-compile"));
  EXPECT_EQ(c.argv.back(), "/usr/lib/giskard-supervisor/shim.whl");
  EXPECT_FALSE(Has(c.argv, "--no-index"));
}

TEST(PipCommandTest, OfflineUsesNoIndexAndFindLinksOnly) {
  PipInputs in = Inputs();
  in.index.offline = true;
  in.index.index_url = "http://ignored";
  in.index.find_links = {"/srv/wheels"};
  in.cache_dir.clear();
  Command c = PipInstallCommand(in);
  EXPECT_TRUE(Has(c.argv, "--no-index"));
  EXPECT_FALSE(Has(c.argv, "http://ignored"));
  EXPECT_TRUE(Has(c.argv, "--no-cache-dir"));
}

TEST(PipCommandTest, EnvironmentIsExplicitAndComplete) {
  ::setenv("PIP_INDEX_URL", "http://leak", 1);
  ::setenv("PYTHONPATH", "/leak", 1);
  Command c = PipInstallCommand(Inputs());
  EXPECT_EQ(c.env.count("PIP_INDEX_URL"), 0u);
  EXPECT_EQ(c.env.count("PYTHONPATH"), 0u);
  EXPECT_EQ(c.env.at("PIP_CONFIG_FILE"), "/dev/null");
  EXPECT_EQ(c.env.at("HOME"), "/state/tmp");
  EXPECT_EQ(c.env.at("PATH").rfind("/state/envs/abc/bin:", 0), 0u);
  Command venv = VenvCommand("/usr/bin/python3.11", Inputs());
  EXPECT_EQ(venv.argv, (std::vector<std::string>{"/usr/bin/python3.11", "-E", "-s", "-m", "venv",
                                                 "--without-pip", "/state/envs/abc"}));
}

}  // namespace
}  // namespace gsk::envs
