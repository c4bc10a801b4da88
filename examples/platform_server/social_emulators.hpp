// The emulators of LinkedIn (/linkedin/rest), TikTok (/tiktok/open_api/v1.3), Snapchat
// (/snapchat/v1) and the webhook receiver (/webhook/<name>). docs/platform-server.md lists their
// endpoints, the rules they enforce and the errors they return.
#ifndef ACTIVATION_PLATFORM_SERVER_SOCIAL_EMULATORS_HPP_
#define ACTIVATION_PLATFORM_SERVER_SOCIAL_EMULATORS_HPP_

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "emulator_base.hpp"
#include "oauth_emulator.hpp"

namespace platform_server {

class LinkedInEmulator final : public EmulatorBase {
 public:
  LinkedInEmulator(ServerCore& core, const SocialOptions& options);

  std::string name() const override { return "linkedin"; }
  void register_routes(httplib::Server& server) override;
  Json inspect_audiences() const override;
  Json inspect_audience(const std::string& id, bool include_members) const override;
  void reset() override;

 private:
  struct Segment {
    std::string id;
    std::string account;  // urn:li:sponsoredAccount:<id>
    std::string name;
    std::string source_platform;
    SteadyTime created{};
    std::map<std::string, Json> members;  // Keyed by the sorted user ids, or the names.
    std::int64_t batches = 0, adds = 0, removes = 0, duplicate_adds = 0, unmatched_removes = 0;
    std::int64_t rejected_elements = 0, not_ready = 0;
  };

  Reply server_error(int status) override;
  std::optional<Reply> check_request(const httplib::Request& request, bool batch_create);
  std::optional<Reply> admit(const std::string& account);
  Reply upload(const httplib::Request& request, const std::string& body);
  Json segment_json(const Segment& segment) const;

  const SocialOptions options_;
  std::map<std::string, Segment> segments_;
  std::vector<std::string> order_;
};

class TikTokEmulator final : public EmulatorBase {
 public:
  TikTokEmulator(ServerCore& core, const SocialOptions& options);

  std::string name() const override { return "tiktok"; }
  void register_routes(httplib::Server& server) override;
  Json inspect_audiences() const override;
  Json inspect_audience(const std::string& id, bool include_members) const override;
  void reset() override;

 private:
  struct Audience {
    std::string id;
    std::string advertiser_id;
    std::string name;
    std::map<std::string, Json> members;  // Keyed by the row's "TYPE:id" pairs.
    std::int64_t requests = 0, adds = 0, removes = 0, duplicate_adds = 0, unmatched_removes = 0;
  };

  Reply server_error(int status) override;
  // The envelope {"code", "message", "request_id", "data"}, always with HTTP 200. Takes no lock.
  Reply envelope(std::int64_t code, const std::string& message, Json data = Json::object());
  std::optional<Reply> authenticate(const httplib::Request& request);
  Reply mapping(const std::string& body);

  const SocialOptions options_;
  std::map<std::string, Audience> audiences_;
  std::vector<std::string> order_;
  std::atomic<std::int64_t> request_counter_{0};
};

class SnapchatEmulator final : public EmulatorBase {
 public:
  // Bearer tokens are checked against the tokens `oauth` issued at /oauth2/token.
  SnapchatEmulator(ServerCore& core, OAuthEmulator& oauth, const SocialOptions& options);

  std::string name() const override { return "snapchat"; }
  void register_routes(httplib::Server& server) override;
  Json inspect_audiences() const override;
  Json inspect_audience(const std::string& id, bool include_members) const override;
  void reset() override;

 private:
  struct Segment {
    std::string id;
    std::string ad_account_id;
    std::string name;
    std::string description;
    std::int64_t retention_in_days = 9999;
    std::map<std::string, std::set<std::string>> identifiers;  // Schema -> hashes.
    std::int64_t requests = 0, uploaded = 0, removed = 0, unmatched_removes = 0;
  };

  Reply server_error(int status) override;
  Reply error(int status, const std::string& code, const std::string& message);
  std::optional<Reply> authenticate(const httplib::Request& request);
  Reply users(const std::string& id, const std::string& body, bool remove);
  Json segment_json(const Segment& segment) const;

  OAuthEmulator& oauth_;
  const SocialOptions options_;
  std::map<std::string, Segment> segments_;
  std::vector<std::string> order_;
  std::atomic<std::int64_t> request_counter_{0};
};

class WebhookReceiver final : public EmulatorBase {
 public:
  WebhookReceiver(ServerCore& core, const SocialOptions& options);

  std::string name() const override { return "webhook"; }
  void register_routes(httplib::Server& server) override;
  // Each receiver name (the path segment after /webhook/) is one "audience".
  Json inspect_audiences() const override;
  Json inspect_audience(const std::string& id, bool include_members) const override;
  void reset() override;

 private:
  struct Endpoint {
    std::map<std::string, Json> members;  // member_key -> identifiers
    std::set<std::string> deliveries;
    std::vector<Json> log;  // One entry per accepted delivery: id, batch, operations, duplicate.
    std::int64_t deliveries_received = 0, duplicate_deliveries = 0, bad_signatures = 0;
    std::int64_t adds = 0, removes = 0, unmatched_removes = 0, rejected = 0;
  };

  Reply server_error(int status) override;
  Reply receive(const std::string& name, const httplib::Request& request, const std::string& body);

  const SocialOptions options_;
  std::map<std::string, Endpoint> endpoints_;
};

}  // namespace platform_server

#endif  // ACTIVATION_PLATFORM_SERVER_SOCIAL_EMULATORS_HPP_
