#include <gtest/gtest.h>
#include "dalle/util/torch_api.h"

#include <filesystem>
#include <fstream>

#include "dalle/data/image_folder.h"
#include "dalle/data/token_set.h"
#include "dalle/io/image.h"
#include "dalle/util/error.h"
#include "dalle/util/fs.h"
#include "test_util.h"

using namespace dalle;
namespace fs = std::filesystem;

namespace {

Image solid(int side, uint8_t value) {
  Image img;
  img.width = img.height = side;
  img.pixels.assign(static_cast<size_t>(side) * side * 3, value);
  return img;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

}  // namespace

TEST(ImageFolder, BadFilesAreSkippedAndCountedGoodOnesKept) {
  const fs::path dir = test::scratch_dir("bad_folder");
  image_save_png((dir / "a_good.png").string(), solid(20, 10));
  write_text(dir / "a_good.txt", "a grey square\n\n  second caption  \n");
  image_save_png((dir / "b_good_wide.png").string(), solid(20, 200));  // no caption file
  const std::vector<uint8_t> png = image_encode_png(solid(20, 50));
  write_file_atomic((dir / "c_truncated.png").string(), png.data(), png.size() / 2);
  write_text(dir / "c_truncated.txt", "cut off");
  write_text(dir / "d_empty.png", "");
  write_text(dir / "d_empty.txt", "nothing here");
  write_text(dir / "e_text.jpg", "this is not a jpeg");
  write_text(dir / "e_text.txt", "bad \xff\xfe bytes");
  write_text(dir / "notes.md", "ignored: not an image");

  ImageSet any = image_set_load(dir.string(), 8, /*require_captions=*/false, 2);
  EXPECT_EQ(any.images.size(0), 2);
  EXPECT_EQ(any.skipped, 3);
  EXPECT_EQ(any.images.sizes(), (std::vector<int64_t>{2, 8, 8, 3}));
  EXPECT_EQ(any.captions[0], (std::vector<std::string>{"a grey square", "second caption"}));
  EXPECT_EQ(any.images[1][0][0][0].item<int>(), 200);

  ImageSet captioned = image_set_load(dir.string(), 8, /*require_captions=*/true, 1);
  EXPECT_EQ(captioned.images.size(0), 1);
  EXPECT_EQ(captioned.skipped, 4);

  // Captions with invalid UTF-8 survive the token folder round trip (repaired, not fatal).
  TokenSet tokens;
  tokens.tokens = torch::zeros({1, 2, 2}, torch::kLong);
  tokens.captions = {{"bad \xff bytes"}};
  token_set_write((dir / "tokens").string(), tokens);
  EXPECT_EQ(token_set_read((dir / "tokens").string()).captions[0][0], "bad \xEF\xBF\xBD bytes");
}

TEST(ImageFolder, MissingOrEmptyFolderIsAClearError) {
  EXPECT_THROW(image_set_load("/nonexistent/folder", 8, false, 1), Error);
  const fs::path dir = test::scratch_dir("empty_folder");
  try {
    image_set_load(dir.string(), 8, false, 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no usable images"), std::string::npos);
  }
}
