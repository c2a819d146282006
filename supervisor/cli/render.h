// Rendering of daemon answers for humans (tables, key: value views, error lines) and the mapping
// from HTTP statuses to the CLI's exit codes. Pure functions; thread-safe.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace gsk::cli {

// The exit code (see client_commands.h) for an HTTP status the daemon answered.
int ExitCodeForHttpStatus(int http_status);

// "2026-11-22T07:37:34.123Z" -> "2026-11-22 07:37:34Z"; other text is returned unchanged.
std::string ShortTime(std::string_view iso_time);
// object[key] as text: strings as they are, "-" for null, empty or absent, JSON otherwise.
std::string Field(const nlohmann::json& object, const char* key);
// A number of seconds as "1d 2h 3m 4s" (the larger units only when needed).
std::string Uptime(const nlohmann::json& seconds);

// NAME TYPE PYTHON STATUS WORKERS DEPS ENV-HASH UPDATED, one row per kernel of a JSON array.
std::string RenderKernelTable(const nlohmann::json& kernels);

// One kernel as "key: value" lines, dependency lists and env names (values as the daemon
// masked them) indented below their heading.
std::string RenderKernelDetails(const nlohmann::json& kernel);

// The body of GET /api/v1/status as "key: value" lines, then the interpreters as a table
// (VERSION PATH SOURCE USABLE, where USABLE is "yes" or "no: <problem>").
std::string RenderDaemonStatus(const nlohmann::json& status);

// What a kernel's build is doing, from its "build" object: "resolving gsk-beta>=1.1 (3
// collected)", "installing 5 packages", "verifying"; "" when there is none.
std::string BuildProgressText(const nlohmann::json& kernel);

// The status with the build progress: "building: installing 5 packages", "pending".
std::string BuildStatusLine(const nlohmann::json& kernel);

// "error: <message>\n" and "field: <details.field>\n" from an error body
// {"error":{"code","message","details"}}; for a body in another shape, the HTTP status and the
// start of the body. `where` names the daemon ("unix socket /run/...").
std::string RenderServerError(int http_status, std::string_view body, std::string_view where);

}  // namespace gsk::cli
