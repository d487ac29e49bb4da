#include <gtest/gtest.h>

#include <regex>

#include "dalle/data/shapes.h"

using namespace dalle;

namespace {

// True if a caption mentions colour c directly before shape s (or one of its synonyms).
bool mentions(const std::string& caption, const std::string& colour, const std::string& shape) {
  std::string synonyms = shape;
  if (shape == "circle") synonyms = "circle|disk";
  if (shape == "diamond") synonyms = "diamond|rhombus";
  if (shape == "cross") synonyms = "cross|plus sign";
  return std::regex_search(caption, std::regex("\\b" + colour + " (" + synonyms + ")\\b"));
}

}  // namespace

TEST(Shapes, CoversTheRequiredVocabulary) {
  EXPECT_GE(shapes_names().size(), 8u);
  EXPECT_GE(shapes_colour_names().size(), 8u);
  EXPECT_GE(shapes_heldout_pairs().size(), 1u);
}

TEST(Shapes, DeterministicPerSeedAndIndex) {
  ShapesOptions o;
  o.seed = 5;
  const ShapesSample a = shapes_render(17, o), b = shapes_render(17, o);
  EXPECT_EQ(a.image.pixels, b.image.pixels);
  EXPECT_EQ(a.captions, b.captions);
  o.seed = 6;
  EXPECT_NE(shapes_render(17, o).image.pixels, a.image.pixels);
}

TEST(Shapes, TrainSplitNeverShowsHeldOutPairsAndHeldoutAlwaysDoes) {
  ShapesOptions train, heldout;
  heldout.split = ShapesSplit::heldout;
  for (int64_t i = 0; i < 1500; ++i) {
    for (const auto& c : shapes_render(i, train).captions)
      for (const auto& [colour, shape] : shapes_heldout_pairs())
        ASSERT_FALSE(mentions(c, colour, shape)) << "train caption uses a held-out pair: " << c;
    const auto held = shapes_render(i, heldout);
    for (const auto& c : held.captions) {
      bool any = false;
      for (const auto& [colour, shape] : shapes_heldout_pairs()) any |= mentions(c, colour, shape);
      ASSERT_TRUE(any) << "heldout caption without a held-out pair: " << c;
    }
  }
}

TEST(Shapes, CaptionsAreVariedAndDescribeRelations) {
  ShapesOptions o;
  std::set<std::string> unique;
  bool relation = false, corner = false;
  for (int64_t i = 0; i < 300; ++i)
    for (const auto& c : shapes_render(i, o).captions) {
      unique.insert(c);
      relation |= std::regex_search(c, std::regex("\\b(above|below|left of|right of)\\b"));
      corner |= c.find("corner") != std::string::npos;
    }
  EXPECT_GT(unique.size(), 700u);
  EXPECT_TRUE(relation);
  EXPECT_TRUE(corner);
}

TEST(Shapes, ImagesHaveTheRequestedSizeAndAreNotBlank) {
  ShapesOptions o;
  o.size = 48;
  const ShapesSample s = shapes_render(3, o);
  EXPECT_EQ(s.image.width, 48);
  EXPECT_EQ(s.image.height, 48);
  std::set<uint32_t> colours;
  for (size_t i = 0; i < s.image.pixels.size(); i += 3)
    colours.insert((s.image.pixels[i] << 16) | (s.image.pixels[i + 1] << 8) | s.image.pixels[i + 2]);
  EXPECT_GE(colours.size(), 2u);
}
