#include "supervisor/process/launch_prep.h"

#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "supervisor/process/log_rotation.h"

namespace gsk::process::internal {
namespace {

bool HasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

Status CheckArgvAndEnv(const ProcessSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) return InvalidArgument("argv is empty");
  if (spec.argv[0].front() != '/') {
    return InvalidArgument("argv[0] \"" + spec.argv[0] +
                           "\" is not an absolute path (no PATH lookup, no shell)");
  }
  for (const std::string& arg : spec.argv) {
    if (HasNul(arg)) return InvalidArgument("an argument of " + spec.argv[0] + " holds a NUL");
  }
  for (const auto& [name, value] : spec.env) {
    if (name.empty() || name.find('=') != std::string::npos || HasNul(name) || HasNul(value)) {
      return InvalidArgument("environment variable name \"" + name +
                             "\" is invalid (empty, or holds '=' or NUL)");
    }
  }
  return Status::Ok();
}

Status CheckCwd(const std::filesystem::path& cwd) {
  if (cwd.empty()) return Status::Ok();
  struct stat st {};
  if (::stat(cwd.c_str(), &st) != 0) {
    return NotFound("working directory " + cwd.string() + ": " + ::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) return InvalidArgument(cwd.string() + " is not a directory");
  return Status::Ok();
}

Status AddLimit(PreparedLaunch& prep, int resource, const char* name,
                const std::optional<uint64_t>& value) {
  if (!value) return Status::Ok();
  struct rlimit current {};
  if (::getrlimit(resource, &current) != 0) {
    return Internal(std::string("getrlimit for ") + name + ": " + ::strerror(errno));
  }
  // Raising a hard limit needs CAP_SYS_RESOURCE; say so before forking.
  if (current.rlim_max != RLIM_INFINITY && *value > current.rlim_max && ::geteuid() != 0) {
    return InvalidArgument(std::string("limits.") + name + " " + std::to_string(*value) +
                           " is above the supervisor's own hard limit " +
                           std::to_string(current.rlim_max));
  }
  prep.limits[prep.limit_count++] = {resource, static_cast<rlim_t>(*value), name};
  return Status::Ok();
}

Status PrepareLimits(const ResourceLimits& limits, PreparedLaunch& prep) {
  GSK_RETURN_IF_ERROR(AddLimit(prep, RLIMIT_AS, "address_space_bytes", limits.address_space_bytes));
  GSK_RETURN_IF_ERROR(AddLimit(prep, RLIMIT_NOFILE, "open_files", limits.open_files));
  GSK_RETURN_IF_ERROR(AddLimit(prep, RLIMIT_NPROC, "processes", limits.processes));
  GSK_RETURN_IF_ERROR(AddLimit(prep, RLIMIT_CORE, "core_bytes", limits.core_bytes));
  return Status::Ok();
}

Status PrepareOutput(const ProcessSpec& spec, PreparedLaunch& prep) {
  if (!spec.log_file.empty() && spec.log_rotate_bytes > 0) {
    GSK_RETURN_IF_ERROR(RotateIfLarger(spec.log_file, spec.log_rotate_bytes));
  }
  if (spec.on_output) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      return ResourceExhausted(std::string("creating the output pipe: ") + ::strerror(errno));
    }
    prep.pipe_read.reset(fds[0]);
    prep.child_output.reset(fds[1]);
    // Only the supervisor's end: the child gets an ordinary blocking pipe.
    if (::fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0) {
      return Internal(std::string("fcntl on the output pipe: ") + ::strerror(errno));
    }
    if (!spec.log_file.empty()) {
      GSK_ASSIGN_OR_RETURN(LogWriter log, LogWriter::Open(spec.log_file, spec.log_rotate_bytes));
      prep.log.emplace(std::move(log));
    }
  } else if (!spec.log_file.empty()) {
    GSK_ASSIGN_OR_RETURN(prep.child_output, OpenForAppend(spec.log_file));
  }
  return Status::Ok();
}

// A pipe that already holds the whole secret and whose write end is closed: the child reads the
// secret, then EOF. The secret fits in the pipe's buffer, so writing never blocks.
Status PrepareSecret(const ProcessSpec& spec, PreparedLaunch& prep) {
  if (!spec.secret && spec.inherit_fd >= 0) {
    if (::fcntl(spec.inherit_fd, F_GETFD) < 0) {
      return InvalidArgument("the descriptor to hand down (" + std::to_string(spec.inherit_fd) +
                             ") is not open");
    }
    prep.inherited_fd = spec.inherit_fd;
    return Status::Ok();
  }
  if (!spec.secret) return Status::Ok();
  if (spec.secret->size() > kMaxSecretBytes) {
    return InvalidArgument("the secret for the child is larger than " +
                           std::to_string(kMaxSecretBytes) + " bytes");
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return ResourceExhausted(std::string("creating the secret pipe: ") + ::strerror(errno));
  }
  prep.secret_read.reset(fds[0]);
  UniqueFd write_end(fds[1]);
  ssize_t n = ::write(write_end.get(), spec.secret->data(), spec.secret->size());
  if (n != static_cast<ssize_t>(spec.secret->size())) {
    return Internal(std::string("writing the secret pipe: ") + ::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace

std::vector<const char*> PreparedLaunch::Envp() const {
  std::vector<const char*> envp;
  envp.reserve(env_strings.size() + 1);
  for (const std::string& entry : env_strings) envp.push_back(entry.c_str());
  envp.push_back(nullptr);
  return envp;
}

ChildSetup PreparedLaunch::Setup() const {
  ChildSetup setup;
  setup.new_process_group = new_process_group;
  setup.stdin_fd = dev_null.get();
  setup.stdout_fd = child_output ? child_output.get() : dev_null.get();
  setup.stderr_fd = setup.stdout_fd;
  setup.secret_fd = secret_read ? secret_read.get() : inherited_fd;
  setup.cwd = cwd.empty() ? nullptr : cwd.c_str();
  setup.limits = limits;
  setup.limit_count = limit_count;
  return setup;
}

Result<PreparedLaunch> PrepareLaunch(const ProcessSpec& spec) {
  GSK_RETURN_IF_ERROR(CheckArgvAndEnv(spec));
  GSK_RETURN_IF_ERROR(CheckCwd(spec.cwd));
  PreparedLaunch prep;
  prep.new_process_group = spec.new_process_group;
  prep.cwd = spec.cwd.string();
  for (const auto& [name, value] : spec.env) prep.env_strings.push_back(name + "=" + value);
  GSK_RETURN_IF_ERROR(PrepareLimits(spec.limits, prep));
  prep.dev_null.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!prep.dev_null) return Internal(std::string("opening /dev/null: ") + ::strerror(errno));
  GSK_RETURN_IF_ERROR(PrepareOutput(spec, prep));
  GSK_RETURN_IF_ERROR(PrepareSecret(spec, prep));
  return prep;
}

}  // namespace gsk::process::internal
