#include "supervisor/relay/messages.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "supervisor/protocol/json_envelope.h"
#include "supervisor/relay/remote_workers.h"

namespace gsk::relay {

using namespace protocol;  // NOLINT: the wire format this file speaks
namespace {

using nlohmann::json;

Result<json> ParseObject(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgument("a frame is not a JSON object");
  }
  return j;
}

Status FieldError(std::string_view field, std::string_view what) {
  return InvalidArgument("hello: " + std::string(field) + " " + std::string(what))
      .WithDetail("field", std::string(field));
}

// A hello of this protocol version, as an object; `advice` ends the version mismatch message.
Result<json> ParseHelloObject(std::string_view text, std::string_view advice) {
  GSK_ASSIGN_OR_RETURN(json j, ParseObject(text));
  if (j.value("type", json()) != "hello") return InvalidArgument("the first message must be a hello");
  const json& protocol = j.value("protocol", json());
  if (!protocol.is_number_integer()) return FieldError("protocol", "must be an integer");
  if (protocol.get<int64_t>() != kProtocolVersion) {
    return FailedPrecondition("protocol " + protocol.dump() + " is not supported; this supervisor speaks " +
                              std::to_string(kProtocolVersion) + std::string(advice));
  }
  return j;
}

}  // namespace

Result<std::string> MessageType(std::string_view json_text) {
  GSK_ASSIGN_OR_RETURN(Frame frame, ParseFrame(json_text));
  return std::move(frame.type);
}

Result<Frame> ParseFrame(std::string_view json_text) {
  Result<JsonEnvelope> envelope = JsonEnvelope::Scan(json_text);
  if (!envelope.ok()) return InvalidArgument("a frame is not a JSON object: " + envelope.status().message());
  const JsonMember* type = envelope->Find("type");
  if (type == nullptr || type->kind != JsonKind::kString) {
    return InvalidArgument("a message has no string \"type\"");
  }
  Frame frame;
  GSK_ASSIGN_OR_RETURN(frame.type, DecodeJsonString(type->value));
  if (const JsonMember* id = envelope->Find("id"); id != nullptr && id->kind == JsonKind::kString) {
    GSK_ASSIGN_OR_RETURN(frame.id, DecodeJsonString(id->value));
  }
  if (const JsonMember* r = envelope->Find("result"); r != nullptr && r->kind == JsonKind::kObject) {
    frame.result = r->value;
  }
  if (const JsonMember* e = envelope->Find("error"); e != nullptr && e->kind == JsonKind::kObject) {
    frame.error = e->value;
  }
  return frame;
}

std::string RequestMessage(std::string_view id, std::string_view method,
                           std::string_view params_json) {
  std::string out;
  out.reserve(params_json.size() + id.size() + method.size() + 48);
  out += "{\"type\":\"request\",\"id\":";
  out += EncodeJsonString(id);
  out += ",\"method\":";
  out += EncodeJsonString(method);
  out += ",\"params\":";
  out += params_json;
  out += "}";
  return out;
}

Result<workers::Registration> ParseHello(std::string_view json_text,
                                          int64_t clock_ticks_per_second) {
  GSK_ASSIGN_OR_RETURN(json j, ParseHelloObject(json_text, ""));
  workers::Registration r;
  const json& id = j.value("workerId", json());
  if (!id.is_string() || id.get<std::string>().empty()) return FieldError("workerId", "must be a non-empty string");
  r.worker_id = id.get<std::string>();
  const json& token = j.value("token", json());
  if (!token.is_string() || token.get<std::string>().empty()) {
    return FieldError("token", "must be a non-empty string (managed workers send GSK_WORKER_TOKEN)");
  }
  r.token = token.get<std::string>();
  const json& env = j.value("env", json());
  if (!env.is_object()) return FieldError("env", "must be an object");
  const json& pid = env.value("pid", json());
  if (!pid.is_number_integer() || pid.get<int64_t>() <= 0 || pid.get<int64_t>() > INT32_MAX) {
    return FieldError("env.pid", "must be a positive integer");
  }
  r.pid = static_cast<int>(pid.get<int64_t>());
  const json& start = env.value("processStartTime", json());
  if (start.is_number() && start.get<double>() >= 0 && std::isfinite(start.get<double>())) {
    r.process_start_ticks =
        std::llround(start.get<double>() * static_cast<double>(clock_ticks_per_second));
  } else if (!start.is_null()) {
    return FieldError("env.processStartTime", "must be a non-negative number or null");
  }
  const json& version = env.value("pythonVersion", json());
  if (!version.is_string()) return FieldError("env.pythonVersion", "must be a string");
  r.python_version = version.get<std::string>();
  r.env_json = env.dump();
  return r;
}

Status ParseRemoteHello(std::string_view json_text, RemoteHello& out) {
  GSK_ASSIGN_OR_RETURN(json j, ParseHelloObject(json_text, "; install the shim it serves"));
  const json& id = j.value("workerId", json());
  if (!id.is_string() || id.get<std::string>().empty() || id.get<std::string>().size() > 128) {
    return FieldError("workerId", "must be a non-empty string of at most 128 characters");
  }
  const json& name = j.value("name", json());
  if (!name.is_string()) {
    return FieldError("name", "must be a string: the worker's name (--name)");
  }
  const json& reconnect = j.value("reconnect", json(false));
  if (!reconnect.is_boolean()) return FieldError("reconnect", "must be true or false");
  const json& env = j.value("env", json());
  if (!env.is_object()) return FieldError("env", "must be an object");
  const json& version = env.value("pythonVersion", json());
  if (!version.is_string()) return FieldError("env.pythonVersion", "must be a string");
  out.worker_id = id.get<std::string>();
  out.name = name.get<std::string>();
  out.reconnect = reconnect.get<bool>();
  out.python_version = version.get<std::string>();
  out.env_json = env.dump(-1, ' ', false, json::error_handler_t::replace);
  return Status::Ok();
}

std::string WelcomeMessage(double heartbeat_seconds, int supervisor_pid) {
  return json{{"type", "welcome"},
              {"protocol", kProtocolVersion},
              {"heartbeatSeconds", heartbeat_seconds},
              {"supervisorPid", supervisor_pid}}
      .dump();
}

std::string HeartbeatMessage(double unix_seconds) {
  return json{{"type", "heartbeat"}, {"ts", unix_seconds}}.dump();
}

std::string ErrorMessage(std::string_view error_type, std::string_view message) {
  return json{{"type", "error"},
              {"error", {{"type", error_type}, {"message", message}, {"traceback", ""}}}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace gsk::relay
