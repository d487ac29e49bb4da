#include "dalle/serve/server.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <random>
#include <thread>

#include "dalle/serve/http.h"
#include "dalle/serve/jobs.h"
#include "dalle/serve/page.h"
#include "dalle/util/error.h"

namespace dalle {

namespace {

using json = nlohmann::json;

std::string base64(const std::vector<uint8_t>& data) {
  static const char* const table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  for (size_t i = 0; i < data.size(); i += 3) {
    const uint32_t n = uint32_t(data[i]) << 16 | (i + 1 < data.size() ? uint32_t(data[i + 1]) << 8 : 0) |
                       (i + 2 < data.size() ? data[i + 2] : 0);
    out += table[n >> 18 & 63];
    out += table[n >> 12 & 63];
    out += i + 1 < data.size() ? table[n >> 6 & 63] : '=';
    out += i + 2 < data.size() ? table[n & 63] : '=';
  }
  return out;
}

// OpenAI's error shape: {"error": {"message", "type", "param", "code"}}.
void send_error(httplib::Response& res, int status, const std::string& message, const std::string& param = "",
                const std::string& type = "invalid_request_error") {
  res.status = status;
  const json error = {{"message", message}, {"type", type}, {"param", param.empty() ? json(nullptr) : json(param)},
                      {"code", nullptr}};
  res.set_content(json{{"error", error}}.dump(), "application/json");
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

// "http://host:port", from the request's Host header, for absolute result URLs.
std::string base_url(const httplib::Request& req) {
  const std::string host = req.get_header_value("Host");
  return "http://" + (host.empty() ? std::string("127.0.0.1") : host);
}

json image_item(const Job& job, const JobImage& image, const std::string& base) {
  json item = {{"rank", image.rank}, {"candidate", image.candidate}, {"seed", job.request.generate.seed},
               {"score", image.score}};
  if (job.request.response_format == "b64_json")
    item["b64_json"] = base64(*image.png);
  else
    item["url"] = base + "/v1/files/" + job.id + "/" + std::to_string(image.rank) + ".png";
  return item;
}

json job_json(const Job& job, const std::string& base) {
  json j = {{"id", job.id},
            {"object", "image.job"},
            {"state", job_state_name(job.state)},
            {"created", static_cast<int64_t>(job.created)},
            {"progress", {{"done", job.done}, {"total", job.total}}},
            {"request", image_request_json(job.request)},
            {"error", job.error.empty() ? json(nullptr) : json(job.error)}};
  if (job.state == JobState::Queued) j["queue_position"] = job.queue_position;
  if (job.started > 0) j["started"] = job.started;
  if (job.finished > 0) j["finished"] = job.finished;
  json results = json::array();
  for (const JobImage& image : job.images) results.push_back(image_item(job, image, base));
  j["results"] = results;
  return j;
}

class Server {
 public:
  Server(Bundle& bundle, const ServeOptions& options)
      : bundle_(bundle),
        options_(options),
        queue_([this](const ImageRequest& r, const std::function<void(int64_t, int64_t)>& progress) { return run(r, progress); },
               options.max_queue, options.keep_jobs) {
    routes();
  }

  void serve();

 private:
  std::vector<JobImage> run(const ImageRequest& request, const std::function<void(int64_t, int64_t)>& progress) {
    const std::vector<GeneratedImage> images = generate_images(bundle_, request.generate, progress);
    std::vector<JobImage> out;
    for (size_t i = 0; i < images.size(); ++i) {
      const int rank = static_cast<int>(i) + 1;
      const PngText text = generation_png_text(bundle_, options_.model_label, request.generate, "", &images[i], rank);
      out.push_back({std::make_shared<const std::vector<uint8_t>>(image_encode_png(images[i].image, text)), rank,
                     images[i].index + 1, images[i].score});
    }
    return out;
  }

  // Parses the body into a queued job; on failure answers and returns "".
  std::string submit(const httplib::Request& req, httplib::Response& res) {
    try {
      uint64_t seed;
      {
        std::lock_guard<std::mutex> lock(seeds_mutex_);
        seed = seeds_() & 0x7fffffff;
      }
      const ImageRequest r = parse_image_request(req.body, options_.limits, bundle_.config, seed);
      return queue_.submit(r);
    } catch (const RequestError& e) {
      send_error(res, 400, e.what(), e.param);
    } catch (const QueueFull& e) {
      res.set_header("Retry-After", std::to_string(e.retry_after_s));
      send_error(res, 429, e.what(), "", "rate_limit_error");
    } catch (const ShuttingDown& e) {
      send_error(res, 503, e.what(), "", "server_error");
    }
    return "";
  }

  json model_json() const {
    const ModelConfig& c = bundle_.config;
    const std::string size = std::to_string(c.vae.image_size) + "x" + std::to_string(c.vae.image_size);
    return {{"id", options_.model_label},
            {"object", "model"},
            {"owned_by", "dalle.cpp"},
            {"sizes", {size}},
            {"image_size", c.vae.image_size},
            {"image_tokens", c.vae.grid() * c.vae.grid()},
            {"reranker", static_cast<bool>(bundle_.reranker)},
            {"trained_on", c.trained_on.empty() ? json(nullptr) : json(c.trained_on)},
            // The sampling settings a request leaves out get these (the config's `sample` section).
            {"sample", config_to_json(c)["sample"]}};
  }

  void routes();

  Bundle& bundle_;
  ServeOptions options_;
  JobQueue queue_;
  httplib::Server http_;
  std::mt19937_64 seeds_{std::random_device{}()};
  std::mutex seeds_mutex_;
};

void Server::routes() {
  const ServeLimits& limits = options_.limits;
  http_.set_payload_max_length(static_cast<size_t>(limits.max_body_bytes));
  const size_t threads = static_cast<size_t>(std::max(8, options_.max_queue + 8));
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_.set_read_timeout(10, 0);
  http_.set_write_timeout(10, 0);

  http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (options_.api_key.empty() || req.path.rfind("/v1/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") == "Bearer " + options_.api_key)
      return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("WWW-Authenticate", "Bearer");
    send_error(res, 401, "missing or wrong API key: send 'Authorization: Bearer KEY'", "", "authentication_error");
    return httplib::Server::HandlerResponse::Handled;
  });
  http_.set_error_handler([limits](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404)
      send_error(res, 404, "no route " + req.method + " " + req.path, "", "not_found_error");
    else if (res.status == 413)
      send_error(res, 413, "the body is larger than " + std::to_string(limits.max_body_bytes) + " bytes");
    else
      send_error(res, res.status, "HTTP " + std::to_string(res.status), "", "server_error");
  });
  http_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string message = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
    }
    send_error(res, 500, message, "", "server_error");
  });

  http_.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kServePageHtml, "text/html; charset=utf-8");
  });
  http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const JobQueue::Stats s = queue_.stats();
    send_json(res, 200, {{"status", queue_.stopping() ? "stopping" : "ok"}, {"model", options_.model_label},
                         {"queue", {{"queued", s.queued}, {"running", s.running}, {"max_queue", s.max_queue},
                                    {"mean_job_seconds", s.mean_job_seconds}}}});
  });
  http_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"object", "list"}, {"data", {model_json()}}});
  });

  http_.Post("/v1/images/generations", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = submit(req, res);
    if (id.empty()) return;
    const std::optional<Job> job = queue_.wait_finished(id);
    if (!job) return send_error(res, 503, "the job was removed before it finished", "", "server_error");
    if (job->state == JobState::Cancelled) return send_error(res, 503, "job " + id + " " + job->error, "", "server_error");
    if (job->state == JobState::Failed) return send_error(res, 500, job->error, "", "server_error");
    json data = json::array();
    for (const JobImage& image : job->images) data.push_back(image_item(*job, image, base_url(req)));
    send_json(res, 200, {{"created", static_cast<int64_t>(job->created)}, {"data", data}, {"job", id}});
  });

  http_.Post("/v1/jobs", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = submit(req, res);
    if (id.empty()) return;
    res.set_header("Location", "/v1/jobs/" + id);
    send_json(res, 202, job_json(*queue_.get(id), base_url(req)));
  });
  http_.Get(R"(/v1/jobs/([A-Za-z0-9_]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::optional<Job> job = queue_.get(req.matches[1]);
    if (!job) return send_error(res, 404, "no job " + std::string(req.matches[1]), "", "not_found_error");
    send_json(res, 200, job_json(*job, base_url(req)));
  });
  http_.Delete(R"(/v1/jobs/([A-Za-z0-9_]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::optional<Job> job = queue_.cancel(req.matches[1]);
    if (!job) return send_error(res, 404, "no job " + std::string(req.matches[1]), "", "not_found_error");
    send_json(res, 200, job_json(*job, base_url(req)));
  });
  http_.Get(R"(/v1/jobs/([A-Za-z0-9_]+)/events)", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    if (!queue_.get(id)) return send_error(res, 404, "no job " + id, "", "not_found_error");
    res.set_header("Cache-Control", "no-cache");
    const std::string base = base_url(req);
    uint64_t seen = ~uint64_t{0};
    res.set_chunked_content_provider("text/event-stream", [this, id, base, seen](size_t, httplib::DataSink& sink) mutable {
      const std::optional<Job> job = queue_.wait_change(id, seen, std::chrono::seconds(10));
      if (!job) {
        sink.done();
        return true;
      }
      std::string event;
      if (job->version == seen) {
        event = ": still there\n\n";  // a comment keeps proxies and clients from timing out
      } else {
        seen = job->version;
        event = std::string("event: ") + (job_finished(job->state) ? "done" : "progress") +
                "\ndata: " + job_json(*job, base).dump() + "\n\n";
      }
      if (!sink.write(event.data(), event.size())) return false;
      if (job_finished(job->state)) sink.done();
      return true;
    });
  });
  http_.Get(R"(/v1/files/([A-Za-z0-9_]+)/([0-9]+)\.png)", [this](const httplib::Request& req, httplib::Response& res) {
    const std::optional<Job> job = queue_.get(req.matches[1]);
    const int rank = std::atoi(std::string(req.matches[2]).c_str());
    if (job)
      for (const JobImage& image : job->images)
        if (image.rank == rank) {
          res.set_header("Content-Disposition", "inline; filename=\"" + job->id + "-" + std::to_string(rank) + ".png\"");
          return res.set_content(reinterpret_cast<const char*>(image.png->data()), image.png->size(), "image/png");
        }
    send_error(res, 404, "no such file (finished jobs keep their images until newer ones replace them)", "",
               "not_found_error");
  });
}

void Server::serve() {
  int port = options_.port;
  if (port == 0)
    port = http_.bind_to_any_port(options_.host);
  else if (!http_.bind_to_port(options_.host, port))
    port = -1;
  if (port < 0)
    throw Error("serve: cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                " (in use, or not an address of this machine?)");

  std::atomic<bool> listening_ended{false};
  std::thread signals([&] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);
    if (!listening_ended) {
      const JobQueue::Stats s = queue_.stats();
      std::fprintf(stderr, "serve: %s: draining (%d queued job(s) cancelled, %d running)\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM", s.queued, s.running);
    }
    queue_.shutdown(std::chrono::seconds(1));
    http_.stop();
  });
  if (options_.on_listening) options_.on_listening(options_.host, port);
  http_.listen_after_bind();
  listening_ended = true;
  ::kill(::getpid(), SIGTERM);  // wakes the signal thread if the server stopped by itself
  signals.join();
  std::fprintf(stderr, "serve: stopped\n");
}

}  // namespace

void serve_block_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void serve(Bundle& bundle, const ServeOptions& options) {
  Server server(bundle, options);
  server.serve();
}

}  // namespace dalle
