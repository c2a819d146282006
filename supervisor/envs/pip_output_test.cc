#include "supervisor/envs/pip_output.h"

#include <gtest/gtest.h>

namespace gsk::envs {
namespace {

void Feed(PipOutput& out, std::initializer_list<const char*> lines) {
  for (const char* l : lines) out.OnLine(l);
}

TEST(PipOutputTest, TracksProgressOfASuccessfulInstall) {
  PipOutput out;
  Feed(out, {"Looking in links: /srv/wheels", "Processing /srv/shim/giskard_worker_shim.whl",
             "Collecting gsk-alpha==2.0.0", "Collecting gsk-beta>=1.1 (from gsk-alpha==2.0.0)"});
  EXPECT_EQ(out.progress().phase, "resolving");
  EXPECT_EQ(out.progress().current, "gsk-beta>=1.1");
  EXPECT_EQ(out.progress().collected, 3);
  Feed(out, {"Installing collected packages: gsk-beta, gsk-alpha, giskard-worker-shim\r"});
  EXPECT_EQ(out.progress().phase, "installing");
  EXPECT_EQ(out.progress().to_install, 3);
  Feed(out, {"Successfully installed giskard-worker-shim-0.1.0 gsk-alpha-2.0.0 gsk-beta-1.2.0"});
  EXPECT_EQ(out.progress().installed, 3);
  EXPECT_EQ(out.FailureReason(), "");
}

TEST(PipOutputTest, PrefersTheNoMatchingDistributionLine) {
  PipOutput out;
  Feed(out, {"Collecting foo==9.9",
             "ERROR: Could not find a version that satisfies the requirement foo==9.9 (from "
             "versions: none)",
             "ERROR: No matching distribution found for foo==9.9"});
  EXPECT_EQ(out.FailureReason(), "No matching distribution found for foo==9.9");
}

TEST(PipOutputTest, ReportsResolverConflictsAndOtherErrors) {
  PipOutput conflict;
  Feed(conflict, {"ERROR: Cannot install gsk-alpha==2.0.0 and gsk-delta==0.1.0 because these "
                  "package versions have conflicting dependencies.",
                  "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io"});
  EXPECT_NE(conflict.FailureReason().find("conflicting dependencies"), std::string::npos);
  PipOutput other;
  Feed(other, {"ERROR: gsk_broken-1.0.0-py3-none-any.whl is not a valid wheel"});
  EXPECT_EQ(other.FailureReason(), "gsk_broken-1.0.0-py3-none-any.whl is not a valid wheel");
}

}  // namespace
}  // namespace gsk::envs
