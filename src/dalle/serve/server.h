// `dalle serve`: the model loaded once behind an HTTP API (cpp-httplib) and a web page.
//   POST /v1/images/generations   OpenAI's images API (waits for the images)
//   POST /v1/jobs                 the same request as a job: 202 and an id
//   GET  /v1/jobs/{id}            state, progress (tokens done / total), results
//   GET  /v1/jobs/{id}/events     progress as server-sent events, until the job ends
//   DELETE /v1/jobs/{id}          cancel a queued or running job (forget a finished one)
//   GET  /v1/files/{id}/{rank}.png, /v1/models, /health, and the page at /
#pragma once
#include <functional>
#include <string>

#include "dalle/bundle/bundle.h"
#include "dalle/serve/image_request.h"

namespace dalle {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (reported through on_listening)
  std::string api_key;  // when set, /v1/ routes need "Authorization: Bearer KEY"
  int max_queue = 16;   // jobs waiting beyond the running one; more get 429
  int keep_jobs = 64;   // finished jobs whose images stay available
  ServeLimits limits;
  std::string model_label;  // the bundle's name as the API reports it
  std::function<void(const std::string& host, int port)> on_listening;
};

// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts later, so that
// serve() receives them; call it before anything starts threads (libtorch's pools included).
void serve_block_signals();

// Serves until SIGINT or SIGTERM, then drains: no new jobs, queued ones cancelled, the running
// one given a second to finish before it is cancelled. Throws Error when it cannot listen.
void serve(Bundle& bundle, const ServeOptions& options);

}  // namespace dalle
