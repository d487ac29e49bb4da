// The server under load: starts `dalle serve` with a small queue, sends R requests to
// POST /v1/images/generations from C concurrent clients, and reports how each ended (200 or
// 429; anything else is a failure), latency percentiles of the served requests, images/s and
// the server's peak resident memory. The last line is the same as JSON (tests/test_serve.cpp
// runs this and checks it).
// Usage: bench_serve [model=models/default] [requests=200] [clients=16] [max_queue=2] [n=1]
//                    [candidates=1] [threads=2]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "dalle/serve/http.h"
#include "dalle/util/subprocess.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  const fs::path bin = fs::canonical("/proc/self/exe").parent_path();
  const std::string model = argc > 1 ? argv[1] : (bin / "../../models/default").string();
  const int requests = argc > 2 ? std::atoi(argv[2]) : 200;
  const int clients = argc > 3 ? std::atoi(argv[3]) : 16;
  const int max_queue = argc > 4 ? std::atoi(argv[4]) : 2;
  const int n = argc > 5 ? std::atoi(argv[5]) : 1;
  const int candidates = argc > 6 ? std::atoi(argv[6]) : 1;
  const int threads = argc > 7 ? std::atoi(argv[7]) : 2;

  const std::string log = (fs::temp_directory_path() / ("bench_serve_" + std::to_string(::getpid()) + ".log")).string();
  dalle::Subprocess server({(bin / "dalle").string(), "serve", "-m", model, "--port", "0", "--max-queue",
                            std::to_string(max_queue), "-t", std::to_string(threads)},
                           log);
  const std::optional<std::string> started = server.wait_for_log("listening on http://", 120);
  if (!started) {
    std::fprintf(stderr, "bench_serve: the server did not start:\n%s\n", server.log().c_str());
    return 1;
  }
  int port = 0;
  std::sscanf(started->c_str() + started->find("listening on http://") + 20, "%*[^:]:%d", &port);
  std::printf("bench_serve: %d requests from %d clients, max queue %d, n %d, candidates %d, %d threads, model %s\n",
              requests, clients, max_queue, n, candidates, threads, model.c_str());

  const std::string body = nlohmann::json{{"prompt", "a red circle"}, {"n", n}, {"candidates", candidates},
                                          {"response_format", "b64_json"}}
                               .dump();
  std::atomic<int> next{0}, ok{0}, refused{0}, other{0}, failed{0}, retried{0};
  std::mutex mutex;
  std::vector<double> latencies_ms;
  long peak_kib = 0;
  std::atomic<bool> done{false};
  std::thread memory([&] {  // sample the server's peak RSS while it is loaded
    while (!done) {
      peak_kib = std::max(peak_kib, server.peak_rss_kib());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int c = 0; c < clients; ++c)
    pool.emplace_back([&] {
      httplib::Client client("127.0.0.1", port);
      client.set_read_timeout(120, 0);
      client.set_connection_timeout(10, 0);
      while (next++ < requests) {
        const auto start = std::chrono::steady_clock::now();
        httplib::Result r = client.Post("/v1/images/generations", body, "application/json");
        if (!r) {  // a dropped connection: the client tries once more, as HTTP clients do
          std::fprintf(stderr, "bench_serve: no answer (%s), retrying\n", httplib::to_string(r.error()).c_str());
          ++retried;
          r = client.Post("/v1/images/generations", body, "application/json");
        }
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        if (!r) {
          ++failed;
          std::fprintf(stderr, "bench_serve: no answer: %s\n", httplib::to_string(r.error()).c_str());
          continue;
        }
        if (r->status == 200) {
          ++ok;
          std::lock_guard<std::mutex> lock(mutex);
          latencies_ms.push_back(ms);
        } else if (r->status == 429) {
          ++refused;
          std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a client that honours back-off a little
        } else {
          ++other;
          std::fprintf(stderr, "bench_serve: status %d: %s\n", r->status, r->body.c_str());
        }
      }
    });
  for (std::thread& t : pool) t.join();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  done = true;
  memory.join();
  server.signal(SIGTERM);
  const std::optional<int> code = server.wait(10);

  std::sort(latencies_ms.begin(), latencies_ms.end());
  const auto pct = [&](double p) {
    return latencies_ms.empty() ? 0.0 : latencies_ms[std::min(latencies_ms.size() - 1, size_t(p * latencies_ms.size()))];
  };
  const double images_per_s = ok * n / wall;
  std::printf("  200: %d, 429: %d, other: %d, no answer: %d (%d retried) in %.1f s\n", ok.load(), refused.load(),
              other.load(), failed.load(), retried.load(), wall);
  std::printf("  latency of served requests: p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms\n", pct(0.5), pct(0.9),
              pct(0.99), latencies_ms.empty() ? 0.0 : latencies_ms.back());
  std::printf("  %.2f images/s; server peak RSS %.0f MiB; exit after SIGTERM: %d\n", images_per_s, peak_kib / 1024.0,
              code ? *code : -1);
  std::printf("%s\n", nlohmann::json{{"requests", requests}, {"ok", ok.load()}, {"refused", refused.load()},
                                     {"other", other.load()}, {"no_answer", failed.load()}, {"retried", retried.load()},
                                     {"wall_s", wall},
                                     {"p50_ms", pct(0.5)}, {"p90_ms", pct(0.9)}, {"p99_ms", pct(0.99)},
                                     {"images_per_s", images_per_s}, {"peak_rss_mib", peak_kib / 1024.0},
                                     {"exit_code", code ? *code : -1}}
                          .dump()
                          .c_str());
  fs::remove(log);
  return 0;
}
