// Rendering of daemon answers for humans (tables, key: value views, error lines) and the mapping
// from HTTP statuses to the CLI's exit codes. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace gsk::cli {

// The exit code (see client_commands.h) for an HTTP status the daemon answered.
int ExitCodeForHttpStatus(int http_status);

// "2026-11-22T07:37:34.123Z" -> "2026-11-22 07:37:34Z"; other text is returned unchanged.
std::string ShortTime(std::string_view iso_time);

// NAME TYPE PYTHON STATUS WORKERS DEPS ENV-HASH UPDATED, one row per kernel of a JSON array.
std::string RenderKernelTable(const nlohmann::json& kernels);

// One kernel as "key: value" lines, dependency lists and env names (values as the daemon
// masked them) indented below their heading.
std::string RenderKernelDetails(const nlohmann::json& kernel);

// The body of GET /api/v1/status as "key: value" lines.
std::string RenderDaemonStatus(const nlohmann::json& status);

// "error: <message>\n" and "field: <details.field>\n" from an error body
// {"error":{"code","message","details"}}; for a body in another shape, the HTTP status and the
// start of the body. `where` names the daemon ("unix socket /run/...").
std::string RenderServerError(int http_status, std::string_view body, std::string_view where);

}  // namespace gsk::cli
