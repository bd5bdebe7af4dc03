// SPDX-License-Identifier: MIT
// ServerHost and the process-wide registry of hosts by socket path (server_host.h).
#include "native/src/vfio_user/server_host.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>

#include "native/src/vfio_user/transport.h"

namespace vfiobox::vfio_user {

namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<ServerHost>> hosts;
};

Registry& TheRegistry() {
  // Never destroyed: worker threads may still use hosts while the process exits, and the
  // kernel closes what is left.
  static Registry* registry = new Registry;
  return *registry;
}

bool SameRegions(const std::vector<RegionSpec>& a, const std::vector<RegionSpec>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].size != b[i].size || a[i].flags != b[i].flags ||
        a[i].memory_backed != b[i].memory_backed ||
        a[i].mmap_areas.size() != b[i].mmap_areas.size()) {
      return false;
    }
    for (size_t j = 0; j < a[i].mmap_areas.size(); ++j) {
      if (a[i].mmap_areas[j].offset != b[i].mmap_areas[j].offset ||
          a[i].mmap_areas[j].size != b[i].mmap_areas[j].size) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace

ServerHost::ServerHost(std::string path, UniqueFd listen_fd, uint64_t inode, DeviceLayout layout,
                       ServerOptions options)
    : path_(std::move(path)), listen_fd_(std::move(listen_fd)), inode_(inode) {
  core_ = std::make_unique<ServerCore>(std::move(layout), options, &null_hooks_);
}

ServerHost::~ServerHost() { Teardown(); }

Expected<std::shared_ptr<ServerHost>> ServerHost::Listen(const std::string& path,
                                                         DeviceLayout layout,
                                                         ServerOptions options) {
  Registry& reg = TheRegistry();
  std::lock_guard<std::mutex> lock(reg.mu);
  if (reg.hosts.count(path) != 0) {
    return Status("bind", EADDRINUSE, {{"path", DetailValue::Str(path)}});
  }
  // the memory outlives every thread that serves the host: a restarted worker finds its bytes
  if (Status st = BackRegionsWithMemory(&layout, path); !st.ok()) return st;
  auto sock = ListenUnix(path);
  if (!sock.ok()) return sock.status();
  struct stat st;
  uint64_t inode = ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
  std::shared_ptr<ServerHost> host(
      new ServerHost(path, std::move(*sock), inode, std::move(layout), options));
  reg.hosts[path] = host;
  return host;
}

std::shared_ptr<ServerHost> ServerHost::Find(const std::string& path) {
  Registry& reg = TheRegistry();
  std::lock_guard<std::mutex> lock(reg.mu);
  auto it = reg.hosts.find(path);
  return it == reg.hosts.end() ? nullptr : it->second;
}

FenceResult ServerHost::Fence(const std::string& path) {
  FenceResult result;
  std::shared_ptr<ServerHost> host = Find(path);
  if (!host) return result;
  std::lock_guard<std::mutex> lock(host->mu_);
  if (host->closed_) return result;
  result.found = true;
  result.attached = host->attached_;
  // detached: no thread touches the core; the null hooks keep anything from reaching a device
  if (!host->attached_) result.answered = host->core_->AnswerInFlight();
  return result;
}

int ServerHost::CloseDetached(const std::string& path) {
  std::shared_ptr<ServerHost> host = Find(path);
  if (!host) return 0;
  {
    std::lock_guard<std::mutex> lock(host->mu_);
    if (host->closed_) return 0;
    if (host->attached_) return -EBUSY;
  }
  host->Close();
  return 1;
}

int ServerHost::AttachThread(DeviceHooks* hooks, std::function<void(int fd)> before_close) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return -ENOENT;
  if (attached_) return -EBUSY;
  attached_ = true;
  core_->AnswerInFlight();  // nobody fenced it: the new thread must not see it
  core_->Resume();
  core_->set_hooks(hooks);
  core_->set_before_close(std::move(before_close));
  return 0;
}

void ServerHost::DetachThread() {
  std::lock_guard<std::mutex> lock(mu_);
  core_->set_hooks(&null_hooks_);
  core_->set_before_close(nullptr);
  attached_ = false;
}

void ServerHost::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closed_ = true;  // from here on nobody else attaches, fences or closes
  }
  {
    Registry& reg = TheRegistry();
    std::lock_guard<std::mutex> lock(reg.mu);
    auto it = reg.hosts.find(path_);
    if (it != reg.hosts.end() && it->second.get() == this) reg.hosts.erase(it);
  }
  Teardown();
  core_->ReleaseMemory();
}

void ServerHost::Teardown() {
  core_->AnswerInFlight();
  core_->Disconnect("server closed");
  if (!listen_fd_.Valid()) return;
  listen_fd_.Reset();
  struct stat st;  // unlink only the socket bound here, not one a successor bound since
  if (::stat(path_.c_str(), &st) == 0 && st.st_ino == inode_) ::unlink(path_.c_str());
}

bool ServerHost::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

bool ServerHost::Matches(const DeviceLayout& layout, const ServerOptions& options) const {
  const DeviceLayout& ours = core_->layout();
  const ServerOptions& opts = core_->options();
  if (ours.flags != layout.flags || !SameRegions(ours.regions, layout.regions)) return false;
  if (ours.irqs.size() != layout.irqs.size()) return false;
  for (size_t i = 0; i < ours.irqs.size(); ++i) {
    if (ours.irqs[i].count != layout.irqs[i].count || ours.irqs[i].flags != layout.irqs[i].flags) {
      return false;
    }
  }
  return opts.max_data_xfer_size == options.max_data_xfer_size &&
         opts.max_dma_maps == options.max_dma_maps;
}

}  // namespace vfiobox::vfio_user
