// SPDX-License-Identifier: MIT
// Checks for a 16550 serial device (1b36:0002, QEMU's pci-serial id, which the kernel's
// built-in 8250_pci driver claims). The guest writes kGuestLine through the tty (the host test
// looks for it on the vfiobox stream socket), then waits for one line from the host.
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "vu-check.h"

static const char kGuestLine[] = "hello from the guest\n";

// Since Linux 6.3 the tty sits below serial-core port devices
// (<pci>/<pci>:0/<pci>:0.0/tty/ttyS4), older kernels put it at <pci>/tty/ttyS4: search a few
// directory levels (real directories only: the symlinks lead out of the device).
// On success `name` is "ttyS2" and `where` the tty directory that held it.
static int find_tty(const char *dir, int depth, char *name, size_t len, char *where,
                    size_t where_len) {
  DIR *d = opendir(dir);
  if (!d) return -errno;
  int err = -ENOENT;
  struct dirent *e;
  while (err && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || e->d_type != DT_DIR) continue;
    char sub[256];
    snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
    if (strcmp(e->d_name, "tty") == 0) {
      DIR *t = opendir(sub);
      struct dirent *te;
      while (t && (te = readdir(t)) != NULL) {
        if (te->d_name[0] == '.') continue;
        snprintf(name, len, "%s", te->d_name);
        snprintf(where, where_len, "%s", sub);
        err = 0;
        break;
      }
      if (t) closedir(t);
    } else if (depth > 0) {
      err = find_tty(sub, depth - 1, name, len, where, where_len);
    }
  }
  closedir(d);
  return err;
}

static bool set_raw(int fd, char *why, size_t why_len) {
  struct termios t;
  if (tcgetattr(fd, &t) != 0) {
    snprintf(why, why_len, "tcgetattr: %s", strerror(errno));
    return false;
  }
  cfmakeraw(&t);
  cfsetispeed(&t, B115200);
  cfsetospeed(&t, B115200);
  t.c_cflag |= CLOCAL | CREAD;
  t.c_cflag &= ~CRTSCTS;
  t.c_cc[VMIN] = 0;
  t.c_cc[VTIME] = 0;
  if (tcsetattr(fd, TCSANOW, &t) != 0) {
    snprintf(why, why_len, "tcsetattr: %s", strerror(errno));
    return false;
  }
  tcflush(fd, TCIOFLUSH);
  return true;
}

// Writes all of `line`, then waits until the UART has taken it (TIOCOUTQ reaches 0).
static bool send_line(int fd, const char *line, int timeout_ms, char *why, size_t why_len) {
  size_t len = strlen(line), done = 0;
  int64_t deadline = vu_now_ms() + timeout_ms;
  while (vu_now_ms() < deadline) {
    if (done < len) {
      ssize_t n = write(fd, line + done, len - done);
      if (n > 0) done += (size_t)n;
      if (n < 0 && errno != EAGAIN) {
        snprintf(why, why_len, "write: %s", strerror(errno));
        return false;
      }
    }
    int queued = -1;
    if (done == len && ioctl(fd, TIOCOUTQ, &queued) == 0 && queued == 0) return true;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    poll(&p, 1, 10);
    if (done == len) {
      struct timespec ts = {0, 10 * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  int queued = -1;
  ioctl(fd, TIOCOUTQ, &queued);
  snprintf(why, why_len, "wrote %zu of %zu bytes, %d still queued after %d ms", done, len, queued,
           timeout_ms);
  return false;
}

// Reads until '\n' or the timeout; `line` gets the printable bytes (others as '?').
static bool recv_line(int fd, char *line, size_t len, int timeout_ms, size_t *got) {
  int64_t deadline = vu_now_ms() + timeout_ms;
  *got = 0;
  line[0] = '\0';
  for (;;) {
    int left = (int)(deadline - vu_now_ms());
    if (left <= 0) return false;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, left) <= 0) continue;
    char c;
    ssize_t n = read(fd, &c, 1);
    if (n != 1) continue;
    if (c == '\n') return true;
    if (*got + 1 < len) {
      line[(*got)++] = isprint((unsigned char)c) ? c : '?';
      line[*got] = '\0';
    }
  }
}

void vu_check_serial(const struct vu_pci_dev *dev, const char *prefix, const struct vu_opts *opts) {
  char tty[32], path[48], why[160], where[256];
  vu_check(prefix, "ids", dev->vendor == 0x1b36 && dev->device == 0x0002, "%04x:%04x at %s",
           dev->vendor, dev->device, dev->bdf);
  int err = find_tty(dev->sysfs, 3, tty, sizeof(tty), where, sizeof(where));
  if (err) {
    vu_check(prefix, "tty", false, "8250_pci registered no tty under %s", dev->sysfs);
    return;
  }
  vu_check(prefix, "tty", true, "%s (%s)", tty, where + strlen(dev->sysfs) + 1);
  snprintf(path, sizeof(path), "/dev/%s", tty);
  int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    vu_check(prefix, "termios", false, "open %s: %s", path, strerror(errno));
    return;
  }
  bool ok = set_raw(fd, why, sizeof(why));
  vu_check(prefix, "termios", ok, "%s", ok ? "raw, 115200 8N1, CLOCAL" : why);
  if (ok) {
    ok = send_line(fd, kGuestLine, opts->timeout_ms, why, sizeof(why));
    vu_check(prefix, "tx", ok, "%s", ok ? "hello from the guest" : why);
  }
  if (ok) {
    char line[128];
    size_t got;
    ok = recv_line(fd, line, sizeof(line), opts->timeout_ms, &got);
    if (ok)
      vu_check(prefix, "rx", true, "%s", line);
    else
      vu_check(prefix, "rx", false, "no line within %d ms (%zu bytes: '%s')", opts->timeout_ms, got,
               line);
  }
  close(fd);
}
