// SPDX-License-Identifier: MIT
// The socket floor for the vfio-user bench: a do-nothing server that answers VERSION with
// 0.0 and an empty capability object and every other command with a reply of the right
// shape (REGION_READ: the request echoed plus `count` zero bytes; anything else: the header).
// Posted (No_reply) commands get nothing. One client, then exit.
//   vu_echo <socket-path>      prints "listening" on stderr when ready
#define _GNU_SOURCE  // accept4
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "vu_wire.h"

static int Listen(const char *path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(addr.sun_path)) return -ENAMETOOLONG;
  strcpy(addr.sun_path, path);
  unlink(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1) < 0) return -errno;
  return fd;
}

static int Reply(int fd, struct vu_header *h, const uint8_t *body, uint32_t body_len) {
  static uint8_t out[16 + 16 + 65536];
  uint32_t payload = 0;
  if (h->command == VU_VERSION) {
    static const char kJson[] = "{\"capabilities\":{}}";
    uint16_t version[2] = {0, 0};
    memcpy(out + 16, version, 4);
    memcpy(out + 20, kJson, sizeof(kJson));
    payload = 4 + sizeof(kJson);
  } else if (h->command == VU_REGION_READ && body_len >= 16) {
    struct vu_region_access a;
    memcpy(&a, body, sizeof(a));
    if (a.count > 65536) a.count = 65536;
    memcpy(out + 16, &a, sizeof(a));
    memset(out + 32, 0, a.count);
    payload = 16 + a.count;
  } else if (h->command == VU_REGION_WRITE && body_len >= 16) {
    memcpy(out + 16, body, 16);
    payload = 16;
  }
  struct vu_header r = {h->msg_id, h->command, 16 + payload, VU_FLAG_REPLY, 0};
  memcpy(out, &r, sizeof(r));
  return vu_io_all(fd, out, 16 + payload, 1);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: vu_echo <socket-path>\n");
    return 2;
  }
  int lfd = Listen(argv[1]);
  if (lfd < 0) {
    fprintf(stderr, "vu_echo: listen %s: %s\n", argv[1], strerror(-lfd));
    return 1;
  }
  fprintf(stderr, "listening %s\n", argv[1]);
  int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0) return 1;
  static uint8_t body[1 << 20];
  for (;;) {
    struct vu_header h;
    if (vu_io_all(fd, &h, sizeof(h), 0) != 0) break;
    if (h.msg_size < 16 || h.msg_size - 16 > sizeof(body)) break;
    uint32_t body_len = h.msg_size - 16;
    if (vu_io_all(fd, body, body_len, 0) != 0) break;
    if (h.flags & VU_FLAG_NO_REPLY) continue;
    if (Reply(fd, &h, body, body_len) != 0) break;
  }
  unlink(argv[1]);
  return 0;
}
