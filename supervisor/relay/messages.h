// The worker protocol's messages as the supervisor reads and writes them (worker-shim/
// PROTOCOL.md): parsing a hello into a workers::Registration, and the supervisor's frames.
// Pure functions over JSON text, tested against the shared example frames. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "supervisor/workers/worker.h"

namespace gsk::relay {

inline constexpr int kProtocolVersion = 1;

// The message's "type", or kInvalidArgument (ProtocolError) when the text is not a JSON object
// with a string "type".
Result<std::string> MessageType(std::string_view json_text);

// A managed worker's hello. kInvalidArgument naming the field for a malformed one;
// kFailedPrecondition for another protocol version. `clock_ticks_per_second` converts
// env.processStartTime (seconds after boot) to /proc's ticks.
Result<workers::Registration> ParseHello(std::string_view json_text, int64_t clock_ticks_per_second);

// An unmanaged worker's hello: workerId, name, reconnect and env (with env.pythonVersion)
// into `out` (its remote and key_name are left as they are). Errors as ParseHello's.
struct RemoteHello;
Status ParseRemoteHello(std::string_view json_text, RemoteHello& out);

// A frame after the hello, as far as the relay needs it: its type and, for a reply, the id and
// the bytes of its result or error object (views into the payload). The payload is validated
// whole; nothing in it is decoded but these.
struct Frame {
  std::string type;
  std::string id;            // a reply's id ("" for null or missing)
  std::string_view result;   // a reply's result object, or empty
  std::string_view error;    // a reply's (or an error frame's) error object, or empty
};
// kInvalidArgument (ProtocolError) when the text is not a JSON object with a string "type".
Result<Frame> ParseFrame(std::string_view json_text);

// {"type":"request","id":id,"method":method,"params":params}; `params_json` is the text of a
// JSON object, copied as is.
std::string RequestMessage(std::string_view id, std::string_view method,
                           std::string_view params_json);

std::string WelcomeMessage(double heartbeat_seconds, int supervisor_pid);
std::string HeartbeatMessage(double unix_seconds);
// {"type":"error","error":{"type": error_type, "message": message, "traceback": ""}}
std::string ErrorMessage(std::string_view error_type, std::string_view message);

}  // namespace gsk::relay
