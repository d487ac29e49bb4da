// `dalle serve` end to end: the real binary on a free loopback port with the shipped model,
// spoken to over HTTP: the OpenAI route, jobs with progress and cancel, a full queue, bad
// requests, the API key, draining on SIGTERM, a bounded load test and the page in a browser.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "dalle/io/image.h"
#include "dalle/serve/http.h"
#include "dalle/util/subprocess.h"
#include "test_util.h"

namespace dalle {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kModel = std::string(DALLE_SOURCE_DIR) + "/models/default";

// A server on a free port, killed when the test ends.
struct Server {
  explicit Server(const std::vector<std::string>& flags = {}, const std::string& name = "serve")
      : log((test::scratch_dir(name) / "serve.log").string()), process(args(flags), log) {
    const std::optional<std::string> started = process.wait_for_log("listening on http://", 120);
    if (!started) throw std::runtime_error("dalle serve did not start:\n" + process.log());
    std::sscanf(started->c_str() + started->find("listening on http://") + 20, "%*[^:]:%d", &port);
  }
  static std::vector<std::string> args(const std::vector<std::string>& flags) {
    std::vector<std::string> a = {DALLE_BINARY, "serve", "-m", kModel, "--port", "0", "-t", "1"};
    a.insert(a.end(), flags.begin(), flags.end());
    return a;
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(120, 0);
    return c;
  }
  std::string log;
  Subprocess process;
  int port = 0;
};

std::string base64_decode(const std::string& in) {
  std::string out;
  int value = 0, bits = -8;
  for (unsigned char c : in) {
    const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char* p = std::strchr(table, c);
    if (c == '=' || !p) break;
    value = (value << 6) + static_cast<int>(p - table);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((value >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

std::string png_text(const std::string& png, const std::string& key) {
  for (const auto& [k, v] : png_read_text(reinterpret_cast<const uint8_t*>(png.data()), png.size()))
    if (k == key) return v;
  return "";
}

json post(httplib::Client& c, const std::string& path, const json& body, int* status = nullptr) {
  const httplib::Result r = c.Post(path.c_str(), body.dump(), "application/json");
  if (!r) throw std::runtime_error("no answer to POST " + path);
  if (status) *status = r->status;
  return json::parse(r->body);
}

// Polls a job until `done(job)` or 60 s.
json poll_job(httplib::Client& c, const std::string& id, const std::function<bool(const json&)>& done) {
  for (int i = 0; i < 3000; ++i) {
    const httplib::Result r = c.Get(("/v1/jobs/" + id).c_str());
    const json job = json::parse(r->body);
    if (done(job)) return job;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("job " + id + " never reached the state the test waits for");
}

TEST(Serve, OpenAiRouteReturnsPngsWithMetadataAndTheSameSeedGivesTheSameBytes) {
  Server server;
  httplib::Client c = server.client();
  const json request = {{"prompt", "a red circle"}, {"n", 2}, {"candidates", 4}, {"seed", 7}, {"response_format", "b64_json"},
                        {"size", "64x64"}};
  int status = 0;
  const json first = post(c, "/v1/images/generations", request, &status);
  ASSERT_EQ(status, 200) << first.dump();
  ASSERT_TRUE(first["created"].is_number_integer());
  ASSERT_EQ(first["data"].size(), 2u);
  const std::string png = base64_decode(first["data"][0]["b64_json"].get<std::string>());
  const Image image = image_decode(reinterpret_cast<const uint8_t*>(png.data()), png.size(), "response");
  EXPECT_EQ(image.width, 64);
  EXPECT_EQ(png_text(png, "prompt"), "a red circle");
  EXPECT_EQ(png_text(png, "seed"), "7");
  EXPECT_EQ(png_text(png, "rank"), "1");
  EXPECT_NE(png_text(png, "sampler").find("n: 4, k: 2"), std::string::npos) << png_text(png, "sampler");
  EXPECT_GE(first["data"][0]["score"].get<double>(), first["data"][1]["score"].get<double>());  // best first

  const json again = post(c, "/v1/images/generations", request, &status);
  EXPECT_EQ(again["data"][0]["b64_json"], first["data"][0]["b64_json"]);
  EXPECT_EQ(again["data"][1]["b64_json"], first["data"][1]["b64_json"]);

  json as_url = request;
  as_url["response_format"] = "url";
  const json urls = post(c, "/v1/images/generations", as_url, &status);
  const std::string url = urls["data"][0]["url"];
  const std::string prefix = "http://127.0.0.1:" + std::to_string(server.port);
  ASSERT_EQ(url.rfind(prefix + "/v1/files/", 0), 0u) << url;
  const httplib::Result file = c.Get(url.substr(prefix.size()).c_str());
  ASSERT_TRUE(file);
  EXPECT_EQ(file->get_header_value("Content-Type"), "image/png");
  EXPECT_EQ(file->body, png);

  const json models = json::parse(c.Get("/v1/models")->body);
  EXPECT_EQ(models["data"][0]["id"], "default");
  EXPECT_EQ(models["data"][0]["sizes"][0], "64x64");
  EXPECT_NE(models["data"][0]["trained_on"].get<std::string>().find("shapes"), std::string::npos);
  // The request gave no sampling settings: it got the model's recommended ones, which /v1/models lists.
  char cfg[64];
  std::snprintf(cfg, sizeof(cfg), "cfg_scale: %g,", models["data"][0]["sample"]["cfg_scale"].get<double>());
  EXPECT_NE(png_text(png, "sampler").find(cfg), std::string::npos) << png_text(png, "sampler");
  EXPECT_EQ(json::parse(c.Get("/health")->body)["status"], "ok");
}

TEST(Serve, JobsStreamProgressAndCancelStopsSamplingWithinAStep) {
  Server server;
  httplib::Client c = server.client();
  int status = 0;
  const json job = post(c, "/v1/jobs", {{"prompt", "a blue square"}, {"n", 1}, {"candidates", 8}, {"seed", 3}}, &status);
  ASSERT_EQ(status, 202) << job.dump();
  const std::string id = job["id"];
  std::string stream;
  const httplib::Result events = c.Get(("/v1/jobs/" + id + "/events").c_str(), [&](const char* data, size_t n) {
    stream.append(data, n);
    return true;
  });
  ASSERT_TRUE(events);
  EXPECT_EQ(events->get_header_value("Content-Type"), "text/event-stream");
  size_t progress_events = 0;
  for (size_t at = stream.find("event: progress"); at != std::string::npos; at = stream.find("event: progress", at + 1))
    ++progress_events;
  EXPECT_GE(progress_events, 2u) << stream.substr(0, 2000);
  const size_t done_at = stream.rfind("event: done\ndata: ");
  ASSERT_NE(done_at, std::string::npos) << stream.substr(0, 2000);
  const json final_state = json::parse(stream.substr(done_at + 18, stream.find('\n', done_at + 18) - done_at - 18));
  EXPECT_EQ(final_state["state"], "succeeded");
  EXPECT_EQ(final_state["progress"]["done"], final_state["progress"]["total"]);
  ASSERT_EQ(final_state["results"].size(), 1u);
  EXPECT_EQ(json::parse(c.Get(("/v1/jobs/" + id).c_str())->body)["state"], "succeeded");

  // A long job, cancelled while it samples.
  const json long_job = post(c, "/v1/jobs", {{"prompt", "a green star"}, {"n", 1}, {"candidates", 64}}, &status);
  const std::string long_id = long_job["id"];
  poll_job(c, long_id, [](const json& j) { return j["state"] == "running" && j["progress"]["done"].get<int>() > 0; });
  const auto t0 = std::chrono::steady_clock::now();
  const httplib::Result cancelled = c.Delete(("/v1/jobs/" + long_id).c_str());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(cancelled);
  const json after = json::parse(cancelled->body);
  EXPECT_EQ(after["state"], "cancelled") << after.dump();
  EXPECT_LT(after["progress"]["done"].get<int>(), after["progress"]["total"].get<int>());
  EXPECT_LT(seconds, 1.0);
  EXPECT_EQ(c.Get(("/v1/jobs/nonexistent"))->status, 404);
}

TEST(Serve, AFullQueueAnswers429WithRetryAfter) {
  Server server({"--max-queue", "1"});
  httplib::Client c = server.client();
  const json slow = {{"prompt", "a red circle"}, {"n", 1}, {"candidates", 64}};
  int status = 0;
  const std::string running = post(c, "/v1/jobs", slow, &status)["id"];
  poll_job(c, running, [](const json& j) { return j["state"] == "running"; });
  const json queued = post(c, "/v1/jobs", slow, &status);
  EXPECT_EQ(status, 202);
  EXPECT_EQ(queued["queue_position"], 1);
  const httplib::Result full = c.Post("/v1/jobs", slow.dump(), "application/json");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->status, 429);
  EXPECT_GE(std::atoi(full->get_header_value("Retry-After").c_str()), 1);
  EXPECT_EQ(json::parse(full->body)["error"]["type"], "rate_limit_error");
  EXPECT_EQ(c.Post("/v1/images/generations", slow.dump(), "application/json")->status, 429);
  EXPECT_EQ(json::parse(c.Delete(("/v1/jobs/" + queued["id"].get<std::string>()).c_str())->body)["state"], "cancelled");
  EXPECT_EQ(json::parse(c.Delete(("/v1/jobs/" + running).c_str())->body)["state"], "cancelled");
}

TEST(Serve, BadRequestsGet400sNamingTheField) {
  Server server({"--max-body", "4096", "--max-n", "4"});
  httplib::Client c = server.client();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"prompt\": \"a red", ""},
      {"[1, 2]", ""},
      {R"({"prompt": "a red circle", "colour": "red"})", "colour"},
      {R"({"n": 1})", "prompt"},
      {R"({"prompt": "   "})", "prompt"},
      {R"({"prompt": 42})", "prompt"},
      {R"({"prompt": ")" + std::string(1200, 'a') + "\"}", "prompt"},
      {R"({"prompt": "a red circle", "n": "two"})", "n"},
      {R"({"prompt": "a red circle", "n": 0})", "n"},
      {R"({"prompt": "a red circle", "n": 5})", "n"},
      {R"({"prompt": "a red circle", "n": 2, "candidates": 1})", "candidates"},
      {R"({"prompt": "a red circle", "size": "256x256"})", "size"},
      {R"({"prompt": "a red circle", "response_format": "jpeg"})", "response_format"},
      {R"({"prompt": "a red circle", "seed": -1})", "seed"},
      {R"({"prompt": "a red circle", "temperature": 0})", "temperature"},
      {R"({"prompt": "a red circle", "top_p": 2})", "top_p"},
      {R"({"prompt": "a red circle", "top_k": 1.5})", "top_k"},
      {R"({"prompt": "a red circle", "cfg_scale": "high"})", "cfg_scale"},
  };
  for (const std::string route : {"/v1/images/generations", "/v1/jobs"})
    for (const auto& [body, param] : cases) {
      SCOPED_TRACE(route + " " + body.substr(0, 80));
      const httplib::Result r = c.Post(route.c_str(), body, "application/json");
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 400);
      const json error = json::parse(r->body)["error"];
      EXPECT_EQ(error["param"], param.empty() ? json(nullptr) : json(param)) << error.dump();
      EXPECT_FALSE(error["message"].get<std::string>().empty());
    }
  const httplib::Result size = c.Post("/v1/jobs", R"({"prompt": "a red circle", "size": "32x32"})", "application/json");
  EXPECT_NE(json::parse(size->body)["error"]["message"].get<std::string>().find("64x64"), std::string::npos);
  EXPECT_EQ(c.Post("/v1/jobs", std::string(8000, ' '), "application/json")->status, 413);
  const httplib::Result missing = c.Get("/v1/nothing");
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(json::parse(missing->body)["error"]["type"], "not_found_error");
  EXPECT_EQ(json::parse(c.Get("/health")->body)["status"], "ok");  // still up
}

TEST(Serve, ApiKeyGuardsEveryApiRoute) {
  Server server({"--api-key", "s3cret"});
  httplib::Client c = server.client();
  EXPECT_EQ(c.Get("/v1/models")->status, 401);
  EXPECT_EQ(c.Post("/v1/images/generations", R"({"prompt": "a red circle"})", "application/json")->status, 401);
  EXPECT_EQ(c.Get("/v1/models", {{"Authorization", "Bearer wrong"}})->status, 401);
  EXPECT_EQ(c.Get("/v1/models", {{"Authorization", "Bearer s3cret"}})->status, 200);
  EXPECT_EQ(c.Get("/health")->status, 200);
  const httplib::Result page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("id=\"prompt\""), std::string::npos);
  EXPECT_EQ(page->body.find("http://"), std::string::npos);  // nothing fetched from elsewhere
  EXPECT_EQ(page->body.find("https://"), std::string::npos);
}

TEST(Serve, SigtermDrainsAndExitsZero) {
  Server server;
  httplib::Client c = server.client();
  const std::string id = post(c, "/v1/jobs", {{"prompt", "a red circle"}, {"n", 1}, {"candidates", 64}})["id"];
  post(c, "/v1/jobs", {{"prompt", "a red circle"}, {"n", 1}, {"candidates", 64}});  // queued behind it
  poll_job(c, id, [](const json& j) { return j["state"] == "running"; });
  server.process.signal(SIGTERM);
  const std::optional<int> code = server.process.wait(3.0);
  ASSERT_TRUE(code) << "still running 3 s after SIGTERM";
  EXPECT_EQ(*code, 0) << server.process.log();
  EXPECT_NE(server.process.log().find("draining (1 queued job(s) cancelled, 1 running)"), std::string::npos)
      << server.process.log();
}

TEST(Serve, LoadOf200RequestsFrom16ClientsGets200Or429AndBoundedMemory) {
  const std::string bench = fs::path(DALLE_BINARY).parent_path() / "bench_serve";
  if (!fs::exists(bench)) GTEST_SKIP() << "bench_serve is not built (DALLE_BUILD_BENCH=OFF)";
  const test::CliRun run = test::dalle_run_program(bench + " " + kModel + " 200 16 2 1 1 1");
  ASSERT_EQ(run.code, 0) << run.output;
  const json r = json::parse(run.output.substr(run.output.rfind('{')));
  EXPECT_EQ(r["ok"].get<int>() + r["refused"].get<int>(), 200) << run.output;
  EXPECT_EQ(r["other"], 0);
  EXPECT_EQ(r["no_answer"], 0);
  // In some runs a few connections of the 200 close before their answer (httplib's "Read" error,
  // up to 3 in one run seen; the cause is not found yet) and the client's retry gets one.
  EXPECT_LE(r["retried"].get<int>(), 10) << run.output;
  EXPECT_GT(r["ok"].get<int>(), 0);
  EXPECT_LT(r["peak_rss_mib"].get<double>(), 1024.0) << run.output;  // the bound: 1 GiB
  EXPECT_EQ(r["exit_code"], 0);
  std::printf("%s", run.output.c_str());
}

TEST(Serve, TheWebPageWorksInAHeadlessBrowser) {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0 ||
      std::system("/usr/bin/python3 -c 'import websocket' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "needs chromium and python3-websocket (scripts/install-deps.sh --test)";
  Server server;
  const fs::path dir = test::scratch_dir("serve_browser");
  const test::CliRun run = test::dalle_run_program(
      "/usr/bin/python3 " + std::string(DALLE_SOURCE_DIR) + "/tests/browser/serve_page.py --url http://127.0.0.1:" +
      std::to_string(server.port) + "/ --prompt 'a red circle' --images 4 --screenshot " + (dir / "page.png").string() +
      " --phone-screenshot " + (dir / "phone.png").string());
  ASSERT_EQ(run.code, 0) << run.output << "\nserver log:\n" << server.process.log();
  const json r = json::parse(run.output.substr(run.output.rfind('{')));
  EXPECT_EQ(r["images"], 4);
  EXPECT_EQ(r["loaded"], true);
  EXPECT_EQ(r["history"], 1);
  EXPECT_LE(r["phone_scroll_width"].get<int>(), 390);
  for (const char* shot : {"page.png", "phone.png"}) {
    const Image png = image_load((dir / shot).string());
    EXPECT_GT(png.width, 300) << shot;
  }
}

}  // namespace
}  // namespace dalle
