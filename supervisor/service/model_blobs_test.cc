#include "supervisor/service/model_blobs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>

#include "base/crypto.h"

namespace gsk::service {
namespace {
namespace fs = std::filesystem;

class ModelBlobsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("gsk-blobs-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "models/forest/src/pkg");
    Write("models/model.pkl", "pickled bytes");
    Write("models/forest/giskard-model.json", R"({"entrypoint": "pkg.m:model", "code": ["src"]})");
    Write("models/forest/src/pkg/m.py", "model = len\n");
    blobs_ = std::make_unique<ModelBlobs>(root_ / "cache");
  }
  void TearDown() override { fs::remove_all(root_); }

  void Write(const std::string& rel, const std::string& text) {
    std::ofstream(root_ / rel, std::ios::binary | std::ios::trunc) << text;
  }
  static std::string Read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  fs::path root_;
  std::unique_ptr<ModelBlobs> blobs_;
};

TEST_F(ModelBlobsTest, AFileIsItsOwnBlobFoundByItsHash) {
  auto ref = blobs_->Describe(root_ / "models/model.pkl");
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  EXPECT_EQ(ref->format, "file");
  EXPECT_EQ(ref->name, "model.pkl");
  EXPECT_EQ(ref->size, 13u);
  EXPECT_EQ(ref->sha256, Sha256Hex("pickled bytes"));
  auto found = blobs_->Find(ref->sha256);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, root_ / "models/model.pkl");
  // Never named by a call: not served, whatever it is.
  EXPECT_EQ(blobs_->Find(Sha256Hex("other")).status().code(), StatusCode::kNotFound);
  // Changed since: not served under the old hash; described anew under the new one.
  Write("models/model.pkl", "new pickled bytes, longer");
  EXPECT_EQ(blobs_->Find(ref->sha256).status().code(), StatusCode::kNotFound);
  auto again = blobs_->Describe(root_ / "models/model.pkl");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->sha256, Sha256Hex("new pickled bytes, longer"));
}

TEST_F(ModelBlobsTest, AFolderIsPackedIntoTheSameTarEveryTimeAndTarReadsIt) {
  auto ref = blobs_->Describe(root_ / "models/forest");
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  EXPECT_EQ(ref->format, "tar");
  EXPECT_EQ(ref->name, "forest");
  auto packed = blobs_->Find(ref->sha256);
  ASSERT_TRUE(packed.ok());
  std::string bytes = Read(*packed);
  EXPECT_EQ(bytes.size(), ref->size);
  EXPECT_EQ(bytes.size() % 512, 0u);
  EXPECT_EQ(Sha256Hex(bytes), ref->sha256);
  // The same folder packed by another supervisor (another cache) gives the same bytes.
  ModelBlobs other(root_ / "cache2");
  auto same = other.Describe(root_ / "models/forest");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->sha256, ref->sha256);
  // tar(1) lists exactly the folder's entries.
  std::string list = (root_ / "list.txt").string();
  std::string cmd = "tar -tf " + packed->string() + " > " + list;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(Read(list), "giskard-model.json\nsrc/\nsrc/pkg/\nsrc/pkg/m.py\n");
  // An archive removed from the cache is packed again when a call names the folder.
  fs::remove(*packed);
  EXPECT_EQ(blobs_->Describe(root_ / "models/forest")->sha256, ref->sha256);
  EXPECT_TRUE(fs::exists(*packed));
  // A change repacks it; the old archive goes.
  Write("models/forest/src/pkg/m.py", "model = sum\n");
  auto repacked = blobs_->Describe(root_ / "models/forest");
  ASSERT_TRUE(repacked.ok());
  EXPECT_NE(repacked->sha256, ref->sha256);
  EXPECT_FALSE(fs::exists(*packed));
  EXPECT_EQ(blobs_->Find(ref->sha256).status().code(), StatusCode::kNotFound);
}

TEST_F(ModelBlobsTest, AnUnchangedFolderKeepsItsBlobAndAChangedFileOfTheSameSizeChangesIt) {
  auto ref = blobs_->Describe(root_ / "models/forest");
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  fs::path packed = *blobs_->Find(ref->sha256);
  auto packed_time = fs::last_write_time(packed);
  auto same = blobs_->Describe(root_ / "models/forest");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->sha256, ref->sha256);
  EXPECT_EQ(same->size, ref->size);
  EXPECT_EQ(fs::last_write_time(packed), packed_time);  // not packed again
  // Same size, content and time changed: only the modification time tells.
  fs::path m = root_ / "models/forest/src/pkg/m.py";
  auto time = fs::last_write_time(m);
  Write("models/forest/src/pkg/m.py", "model = max\n");
  fs::last_write_time(m, time + std::chrono::nanoseconds(1));
  auto changed = blobs_->Describe(root_ / "models/forest");
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(changed->sha256, ref->sha256);
  EXPECT_EQ(Sha256Hex(Read(*blobs_->Find(changed->sha256))), changed->sha256);
  // The relative paths do not depend on how the folder is spelled.
  auto plain = FolderFingerprint(root_ / "models/forest");
  auto slashed = FolderFingerprint(root_ / "models/forest/");
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE(slashed.ok());
  EXPECT_EQ(*plain, *slashed);
  EXPECT_NE(plain->find("src/pkg/m.py\n12@"), std::string::npos) << *plain;
}

TEST_F(ModelBlobsTest, AFileIsDescribedOnceWhileUnchangedAndAVanishedOneIsUnavailable) {
  auto ref = blobs_->Describe(root_ / "models/model.pkl");
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(blobs_->Describe(root_ / "models/model.pkl")->sha256, ref->sha256);
  fs::remove(root_ / "models/model.pkl");
  auto gone = blobs_->Describe(root_ / "models/model.pkl");
  EXPECT_EQ(gone.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(gone.status().message().find("model.pkl"), std::string::npos);
  EXPECT_EQ(blobs_->Find(ref->sha256).status().code(), StatusCode::kNotFound);
}

TEST_F(ModelBlobsTest, LongNamesUseTheUstarPrefixAndLinksAreRefused) {
  std::string deep = "models/forest/" + std::string(90, 'd') + "/" + std::string(60, 'e');
  fs::create_directories(root_ / deep);
  Write(deep + "/" + std::string(80, 'f') + ".py", "x = 1\n");
  auto ref = blobs_->Describe(root_ / "models/forest");
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  std::string list = (root_ / "list.txt").string();
  std::string cmd = "tar -tf " + blobs_->Find(ref->sha256)->string() + " > " + list;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_NE(Read(list).find(std::string(90, 'd') + "/" + std::string(60, 'e') + "/" +
                            std::string(80, 'f') + ".py\n"),
            std::string::npos);
  fs::create_symlink("/etc/passwd", root_ / "models/forest/passwd");
  auto refused = blobs_->Describe(root_ / "models/forest");
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("passwd"), std::string::npos);
}

}  // namespace
}  // namespace gsk::service
