// SPDX-License-Identifier: MIT
// Checks for an edu device (1234:11e8). Register map: QEMU docs/specs/edu.rst
//   0x00 ident 0x010000ed   0x04 liveness (reads back ~written)   0x08 factorial
//   0x20 status (bit 0: computing)   0x24 irq status   0x60 irq raise   0x64 irq ack
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vu-check.h"

enum {
  kEduIdent = 0x00,
  kEduLiveness = 0x04,
  kEduFactorial = 0x08,
  kEduStatus = 0x20,
  kEduIrqStatus = 0x24,
  kEduIrqRaise = 0x60,
  kEduIrqAck = 0x64,
  kEduStatusComputing = 1u << 0,
  kEduIdentValue = 0x010000ed,
  kMapBytes = 4096,
};

struct edu {
  const struct vu_pci_dev *dev;
  const struct vu_opts *opts;
  volatile uint32_t *bar0;
  const char *prefix;
};

static uint32_t rd(struct edu *e, unsigned off) { return e->bar0[off / 4]; }
static void wr(struct edu *e, unsigned off, uint32_t v) { e->bar0[off / 4] = v; }

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int read_u16(struct edu *e, unsigned off, uint16_t *v) {
  return vu_pci_config_read(e->dev, off, v, sizeof(*v));
}

static int write_u16(struct edu *e, unsigned off, uint16_t v) {
  return vu_pci_config_write(e->dev, off, &v, sizeof(v));
}

// The memory-space enable bit gates every BAR access (PCI 3.0 6.2.2), and the kernel leaves
// it clear for a device no driver enabled.
static bool enable_decode(struct edu *e) {
  uint16_t before, after;
  int err = read_u16(e, kPciCommand, &before);
  if (!err) err = write_u16(e, kPciCommand, before | kPciCommandMemory);
  if (!err) err = read_u16(e, kPciCommand, &after);
  if (err) return vu_check(e->prefix, "decode", false, "config access: %s", strerror(-err));
  return vu_check(e->prefix, "decode", after & kPciCommandMemory, "command 0x%04x -> 0x%04x",
                  before, after);
}

static bool map_bar0(struct edu *e) {
  void *p = vu_pci_map_bar(e->dev, 0, kMapBytes);
  if (p == NULL) {
    return vu_check(e->prefix, "ident", false, "map %s/resource0: %s", e->dev->sysfs,
                    strerror(errno));
  }
  e->bar0 = p;
  uint32_t ident = rd(e, kEduIdent);
  return vu_check(e->prefix, "ident", ident == kEduIdentValue, "0x%08x", ident);
}

static void liveness(struct edu *e) {
  const uint32_t v = 0x12345678;
  wr(e, kEduLiveness, v);
  uint32_t got = rd(e, kEduLiveness);
  vu_check(e->prefix, "liveness", got == (uint32_t)~v, "wrote 0x%08x read 0x%08x", v, got);
}

static void factorial(struct edu *e) {
  wr(e, kEduFactorial, 5);
  int64_t deadline = vu_now_ms() + e->opts->timeout_ms;
  uint32_t status;
  while ((status = rd(e, kEduStatus)) & kEduStatusComputing) {
    if (vu_now_ms() > deadline) {
      vu_check(e->prefix, "factorial", false, "still computing after %d ms", e->opts->timeout_ms);
      return;
    }
    sleep_ms(1);
  }
  uint32_t got = rd(e, kEduFactorial);
  vu_check(e->prefix, "factorial", got == 120, "5! = %u (status 0x%x)", got, status);
}

// uio_pci_generic binds by id through new_id; a second edu finds the id already added (EEXIST)
// and is bound explicitly. Returns the uio fd or -1.
static int bind_uio(struct edu *e) {
  static const char kDrv[] = "/sys/bus/pci/drivers/uio_pci_generic";
  char path[128], id[16], uio[32];
  snprintf(path, sizeof(path), "%s/new_id", kDrv);
  snprintf(id, sizeof(id), "%04x %04x", e->dev->vendor, e->dev->device);
  int err = vu_sysfs_write(path, id);
  if (err == -EEXIST) {
    snprintf(path, sizeof(path), "%s/bind", kDrv);
    err = vu_sysfs_write(path, e->dev->bdf);
  }
  if (err && vu_pci_child(e->dev, "uio", uio, sizeof(uio)) != 0) {
    vu_check(e->prefix, "uio-bind", false, "%s: %s (INTx masking unsupported?)", path,
             strerror(-err));
    return -1;
  }
  err = vu_pci_child(e->dev, "uio", uio, sizeof(uio));
  if (err) {
    vu_check(e->prefix, "uio-bind", false, "no uio node: %s", strerror(-err));
    return -1;
  }
  snprintf(path, sizeof(path), "/dev/%s", uio);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    vu_check(e->prefix, "uio-bind", false, "open %s: %s", path, strerror(errno));
    return -1;
  }
  vu_check(e->prefix, "uio-bind", true, "uio_pci_generic bound as %s", uio);
  return fd;
}

// One raise/ack round. uio_pci_generic's handler masks INTx (Command bit 10) once it sees
// Status bit 3 (pci_check_and_mask_intx); we unmask it again through config space, as the
// driver's documentation asks of userspace.
static bool irq_round(struct edu *e, int fd, uint32_t value, uint32_t *count, char *why,
                      size_t why_len) {
  wr(e, kEduIrqRaise, value);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int n = poll(&p, 1, e->opts->timeout_ms);
  uint16_t cmd = 0, sts = 0;
  read_u16(e, kPciCommand, &cmd);
  read_u16(e, kPciStatus, &sts);
  if (n <= 0) {
    snprintf(why, why_len,
             "no interrupt within %d ms (irq status 0x%x, command 0x%04x, status 0x%04x)",
             e->opts->timeout_ms, rd(e, kEduIrqStatus), cmd, sts);
    return false;
  }
  if (read(fd, count, sizeof(*count)) != (ssize_t)sizeof(*count)) {
    snprintf(why, why_len, "read uio: %s", strerror(errno));
    return false;
  }
  uint32_t latched = rd(e, kEduIrqStatus);
  wr(e, kEduIrqAck, value);
  int err = write_u16(e, kPciCommand, cmd & ~kPciCommandIntxDisable);
  if (err) {
    snprintf(why, why_len, "unmask INTx: %s", strerror(-err));
    return false;
  }
  if (latched != value || !(cmd & kPciCommandIntxDisable)) {
    snprintf(why, why_len, "irq status 0x%x (want 0x%x), command 0x%04x after the irq", latched,
             value, cmd);
    return false;
  }
  return true;
}

static void interrupts(struct edu *e) {
  int fd = bind_uio(e);
  if (fd < 0) return;
  char why[160] = "";
  uint32_t c1 = 0, c2 = 0;
  bool ok = irq_round(e, fd, 0x1, &c1, why, sizeof(why));
  if (!ok) {
    vu_check(e->prefix, "irq", false, "%s", why);
    goto out;
  }
  vu_check(e->prefix, "irq", true, "interrupt %u arrived via INTx", c1);
  // The second round proves the unmask path: a lost INTx unmask leaves the line masked.
  ok = irq_round(e, fd, 0x2, &c2, why, sizeof(why));
  if (ok && c2 <= c1) {
    ok = false;
    snprintf(why, sizeof(why), "event count did not advance (%u -> %u)", c1, c2);
  }
  if (ok)
    vu_check(e->prefix, "irq-again", true, "event count %u -> %u after the unmask", c1, c2);
  else
    vu_check(e->prefix, "irq-again", false, "%s", why);
  uint16_t sts = 0;
  read_u16(e, kPciStatus, &sts);
  vu_check(e->prefix, "intx-status", !(sts & kPciStatusInterrupt),
           "status 0x%04x after ack (bit 3 must be clear)", sts);
out:
  close(fd);
}

void vu_check_edu(const struct vu_pci_dev *dev, const char *prefix, const struct vu_opts *opts) {
  struct edu e = {.dev = dev, .opts = opts, .prefix = prefix};
  vu_check(e.prefix, "ids", dev->vendor == 0x1234 && dev->device == 0x11e8, "%04x:%04x at %s",
           dev->vendor, dev->device, dev->bdf);
  if (!enable_decode(&e) || !map_bar0(&e)) return;
  liveness(&e);
  factorial(&e);
  interrupts(&e);
  munmap((void *)e.bar0, kMapBytes);
}
