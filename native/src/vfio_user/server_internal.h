// SPDX-License-Identifier: MIT
// Shared by the server_*.cc files only: the per-connection state and payload helpers.
#ifndef VFIOBOX_NATIVE_SRC_VFIO_USER_SERVER_INTERNAL_H_
#define VFIOBOX_NATIVE_SRC_VFIO_USER_SERVER_INTERNAL_H_

#include <cstring>
#include <vector>

#include "native/src/vfio_user/server_core.h"

namespace vfiobox::vfio_user {

struct ServerCore::Connection {
  Connection(UniqueFd sock, uint32_t max_msg_size) : transport(std::move(sock), max_msg_size) {}
  Transport transport;
  bool negotiated = false;
  ClientCaps caps;
  uint32_t max_xfer = kDefaultMaxDataXferSize;  // min(ours, the client's max_data_xfer_size)
};

/** copies the payload's first sizeof(T) bytes into *out; false when the payload is shorter. */
template <typename T>
bool ReadHead(const Message& msg, T* out) {
  if (msg.payload_size() < sizeof(T)) return false;
  std::memcpy(out, msg.payload(), sizeof(T));  // memcpy: the payload may be unaligned for T
  return true;
}

template <typename T>
void AppendStruct(std::vector<uint8_t>* out, const T& value) {
  // SAFETY: T is one of the trivially copyable wire structs of protocol.h.
  const uint8_t* p = reinterpret_cast<const uint8_t*>(&value);
  out->insert(out->end(), p, p + sizeof(T));
}

}  // namespace vfiobox::vfio_user

#endif  // VFIOBOX_NATIVE_SRC_VFIO_USER_SERVER_INTERNAL_H_
