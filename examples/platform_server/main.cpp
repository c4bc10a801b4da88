// activation-platform-server: a local emulator of the ad platforms' audience APIs, with fault
// injection, for tests and benchmarks. It listens on 127.0.0.1 only. With --port 0 it picks a free
// port; either way the port is the first line it prints on stdout, once it accepts connections.
#include <signal.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "google_emulator.hpp"
#include "meta_emulator.hpp"
#include "oauth_emulator.hpp"
#include "server_core.hpp"
#include "social_emulators.hpp"

namespace {

using platform_server::ServerOptions;

constexpr const char* kUsage = R"(usage: activation-platform-server [options]

Emulates the ad platforms' audience APIs on 127.0.0.1, with fault injection: Meta under /meta,
Google under /google (Data Manager and Ads API), LinkedIn under /linkedin, TikTok under /tiktok,
Snapchat under /snapchat, a signed-webhook receiver under /webhook/<name>, and the OAuth token
endpoint of Google and Snapchat at /oauth2/token.
Prints the port as the first line on stdout once it accepts connections.

  --port N                    port to listen on; 0 picks a free one (default 0)
  --threads N                 worker threads, one per open connection (default 32)
  --token TOKEN               an accepted access token; repeat for more (default: any token)
  --app-secret SECRET         require and verify appsecret_proof with this app secret
  --seed N                    seed of the fault draws, so that runs repeat (default 1)
  --error-rate R              share of requests that get a 5xx response, 0 to 1 (default 0)
  --html-error-share R        share of those 5xx responses sent as an HTML page (default 0.25)
  --drop-rate R               share of requests whose connection is closed without a response (default 0)
  --fault-after-apply R       share of 5xx and drops injected after the request took effect (default 0.5)
  --latency-ms N              milliseconds added to every platform request (default 0)
  --latency-jitter-ms N       plus a uniform draw of up to N milliseconds (default 0)
  --rate-limit N              requests per ad account per window before throttling; 0 is off (default 0)
  --rate-window-ms N          length of the throttling window in milliseconds (default 60000)
  --throttle-code C           error code of throttled responses: 4, 17, 613 or 80003 (default 80003)
  --token-expire-after N      expire a token after N requests with it; 0 is off (default 0)
  --session-lifetime-seconds N  lifetime of an upload session (default 5400, Meta's 90 minutes)
  --min-api-version N         reply versions below vN.0 with error 2635 (default: accept all)
  --new-audience-alias-error  fail the first /users call of each new audience with error 803
  --linkedin-min-version YYYYMM  answer LinkedIn-Version values below it with HTTP 426 (default: accept all)
  --linkedin-ready-delay-ms N refuse users of a new LinkedIn segment for N ms with HTTP 409 (default 5000)
  --tiktok-max-rows N         batch_data rows per TikTok mapping request before code 40061 (default 10000)
  --webhook-secret SECRET     verify webhook signatures with this key (default: no verification)
  --webhook-max-skew-seconds N  refuse webhook timestamps further than N s from now (default 300)
  --webhook-require-field F   reject webhook adds without an identifier of field F, such as email
  --oauth-token-lifetime-seconds N  expires_in of access tokens from /oauth2/token (default 3599)
  --oauth-expire-after N      expire an OAuth access token after N API requests with it; 0 is off (default 0)
  --oauth-revoke TOKEN        answer this refresh token with invalid_grant; repeat for more
  --oauth-client ID:SECRET    accept only these OAuth clients; repeat for more (default: any client)
  --google-processing-polls N status reads that report PROCESSING or RUNNING before the end (default 1)
  --google-not-allowlisted    fail Google Ads job creation with CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE
  --log-requests              print method, path and status of each request on stderr
  --help                      print this text
)";

std::optional<long long> parse_integer(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end == nullptr || *end != '\0') return std::nullopt;
  return value;
}

std::optional<double> parse_fraction(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (end == nullptr || *end != '\0' || !(value >= 0.0 && value <= 1.0)) return std::nullopt;
  return value;
}

[[noreturn]] void fail(const std::string& message) {
  std::cerr << "activation-platform-server: " << message << "\n(run with --help for the options)\n";
  std::exit(2);
}

struct Parsed {
  ServerOptions options;
  platform_server::SocialOptions social;
  platform_server::OAuthOptions oauth;
  platform_server::GoogleOptions google;
  bool log_requests = false;
};

Parsed parse_arguments(int argc, char** argv) {
  Parsed parsed;
  ServerOptions& options = parsed.options;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (flag == "--new-audience-alias-error") {
      options.new_audience_alias_error = true;
      continue;
    }
    if (flag == "--google-not-allowlisted") {
      parsed.google.not_allowlisted = true;
      continue;
    }
    if (flag == "--log-requests") {
      parsed.log_requests = true;
      continue;
    }
    if (i + 1 >= argc) fail("option " + flag + " needs a value");
    std::string value = argv[++i];

    auto integer = [&](long long min, long long max) {
      std::optional<long long> number = parse_integer(value);
      if (!number || *number < min || *number > max) {
        fail("option " + flag + " expects an integer from " + std::to_string(min) + " to " +
             std::to_string(max) + ", got '" + value + "'");
      }
      return *number;
    };
    auto fraction = [&]() {
      std::optional<double> number = parse_fraction(value);
      if (!number) fail("option " + flag + " expects a number from 0 to 1, got '" + value + "'");
      return *number;
    };

    if (flag == "--port") {
      options.port = static_cast<int>(integer(0, 65535));
    } else if (flag == "--threads") {
      options.threads = static_cast<int>(integer(1, 1024));
    } else if (flag == "--token") {
      if (value.empty()) fail("option --token expects a non-empty token");
      options.tokens.push_back(value);
    } else if (flag == "--app-secret") {
      if (value.empty()) fail("option --app-secret expects a non-empty secret");
      options.app_secret = value;
    } else if (flag == "--seed") {
      options.faults.seed = static_cast<std::uint64_t>(integer(0, INT64_MAX));
    } else if (flag == "--error-rate") {
      options.faults.error_rate = fraction();
    } else if (flag == "--html-error-share") {
      options.faults.html_error_share = fraction();
    } else if (flag == "--drop-rate") {
      options.faults.drop_rate = fraction();
    } else if (flag == "--fault-after-apply") {
      options.faults.after_apply_share = fraction();
    } else if (flag == "--latency-ms") {
      options.faults.latency = std::chrono::milliseconds(integer(0, 600'000));
    } else if (flag == "--latency-jitter-ms") {
      options.faults.latency_jitter = std::chrono::milliseconds(integer(0, 600'000));
    } else if (flag == "--rate-limit") {
      options.rate_limit = integer(0, INT64_MAX);
    } else if (flag == "--rate-window-ms") {
      options.rate_window = std::chrono::milliseconds(integer(1, 86'400'000));
    } else if (flag == "--throttle-code") {
      long long code = integer(0, INT32_MAX);
      if (code != 4 && code != 17 && code != 613 && code != 80003) {
        fail("option --throttle-code expects 4, 17, 613 or 80003, got '" + value + "'");
      }
      options.throttle_code = static_cast<int>(code);
    } else if (flag == "--token-expire-after") {
      options.token_expire_after = integer(0, INT64_MAX);
    } else if (flag == "--session-lifetime-seconds") {
      options.session_lifetime = std::chrono::seconds(integer(1, 86'400 * 7));
    } else if (flag == "--min-api-version") {
      options.min_api_version = static_cast<int>(integer(0, 1000));
    } else if (flag == "--linkedin-min-version") {
      parsed.social.linkedin_min_version = static_cast<int>(integer(200001, 999912));
    } else if (flag == "--linkedin-ready-delay-ms") {
      parsed.social.linkedin_ready_delay = std::chrono::milliseconds(integer(0, 3'600'000));
    } else if (flag == "--tiktok-max-rows") {
      parsed.social.tiktok_max_rows = static_cast<std::size_t>(integer(1, 1'000'000));
    } else if (flag == "--webhook-secret") {
      if (value.empty()) fail("option --webhook-secret expects a non-empty secret");
      parsed.social.webhook_secret = value;
    } else if (flag == "--webhook-max-skew-seconds") {
      parsed.social.webhook_max_skew = std::chrono::seconds(integer(0, 86'400));
    } else if (flag == "--webhook-require-field") {
      parsed.social.webhook_require_field = value;
    } else if (flag == "--oauth-token-lifetime-seconds") {
      parsed.oauth.token_lifetime = std::chrono::seconds(integer(1, 86'400));
    } else if (flag == "--oauth-expire-after") {
      parsed.oauth.expire_after_uses = integer(0, INT64_MAX);
    } else if (flag == "--oauth-revoke") {
      parsed.oauth.revoked_refresh_tokens.insert(value);
    } else if (flag == "--oauth-client") {
      std::size_t colon = value.find(':');
      if (colon == std::string::npos || colon == 0) fail("option --oauth-client expects ID:SECRET, got '" + value + "'");
      parsed.oauth.clients[value.substr(0, colon)] = value.substr(colon + 1);
    } else if (flag == "--google-processing-polls") {
      parsed.google.processing_polls = integer(0, 1000);
    } else {
      fail("unknown option " + flag);
    }
  }
  return parsed;
}

}  // namespace

int main(int argc, char** argv) {
  Parsed parsed = parse_arguments(argc, argv);
  ServerOptions options = parsed.options;

  // A waiting thread takes SIGINT and SIGTERM and stops the server cleanly. The signals are
  // blocked before any other thread starts, so that every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  platform_server::ServerCore core(options);
  core.add_emulator(std::make_shared<platform_server::MetaEmulator>(core));
  auto oauth = std::make_shared<platform_server::OAuthEmulator>(core, parsed.oauth);
  core.add_emulator(oauth);
  core.add_emulator(std::make_shared<platform_server::GoogleEmulator>(core, *oauth, parsed.google));
  core.add_emulator(std::make_shared<platform_server::LinkedInEmulator>(core, parsed.social));
  core.add_emulator(std::make_shared<platform_server::TikTokEmulator>(core, parsed.social));
  core.add_emulator(std::make_shared<platform_server::SnapchatEmulator>(core, *oauth, parsed.social));
  core.add_emulator(std::make_shared<platform_server::WebhookReceiver>(core, parsed.social));

  httplib::Server server;
  int threads = options.threads;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  // Without TCP_NODELAY the response's headers and body leave in two segments, and the client's
  // delayed ACK stalls every keep-alive request for about 40 ms.
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(100'000);
  server.set_keep_alive_timeout(30);
  server.set_payload_max_length(256u << 20);
  if (parsed.log_requests) {
    server.set_logger([](const httplib::Request& request, const httplib::Response& response) {
      // The path only: query strings may carry access tokens.
      std::fprintf(stderr, "%s %s -> %d\n", request.method.c_str(), request.path.c_str(), response.status);
    });
  }
  // A bug in a handler becomes a JSON 500 naming it, instead of an empty response from the library.
  server.set_exception_handler(
      [](const httplib::Request& request, httplib::Response& response, std::exception_ptr failure) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(failure);
        } catch (const std::exception& error) {
          what = error.what();
        } catch (...) {
        }
        std::fprintf(stderr, "activation-platform-server: %s %s failed: %s\n", request.method.c_str(),
                     request.path.c_str(), what.c_str());
        nlohmann::json body = {{"error",
                                {{"message", "internal error in the test server: " + what},
                                 {"type", "TestServerException"},
                                 {"code", 1},
                                 {"is_transient", false}}}};
        response.status = 500;
        response.set_content(body.dump(), "application/json");
      });
  core.register_routes(server);

  int port = options.port;
  if (port == 0) {
    port = server.bind_to_any_port(options.host);
    if (port < 0) fail("could not bind a free port on " + options.host);
  } else if (!server.bind_to_port(options.host, port)) {
    fail("could not bind " + options.host + ":" + std::to_string(port) + " (in use?)");
  }

  // The socket is listening once bound, so a client that reads the port may connect at once.
  std::cout << port << std::endl;
  std::cerr << "activation-platform-server: listening on http://" << options.host << ":" << port
            << " (Meta under /meta, Google under /google, LinkedIn under /linkedin, TikTok under /tiktok, "
               "Snapchat under /snapchat, OAuth tokens at /oauth2/token, webhooks under /webhook, "
               "inspection under /__inspect)"
            << std::endl;

  std::thread stopper([&server, stop_signals] {
    int received = 0;
    sigwait(&stop_signals, &received);
    server.stop();
    // A connection that its client keeps open blocks listen_after_bind() for the whole keep-alive
    // timeout (30 s). The emulators keep nothing that must be saved, so after a short grace for
    // requests in progress the process ends without waiting for those connections.
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::cerr << "activation-platform-server: stopped" << std::endl;
    std::_Exit(0);
  });
  stopper.detach();

  bool clean = server.listen_after_bind();
  std::cerr << "activation-platform-server: stopped" << std::endl;
  return clean ? 0 : 1;
}
