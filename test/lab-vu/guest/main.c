// SPDX-License-Identifier: MIT
// vu-check main: lists the PCI devices, runs the checks for every edu, serial16550, scratchpad,
// hostile fixture (DMA windows) and csum it finds (numbered in BDF order: edu0, edu1, serial0,
// scratchpad0, window0, csum0, ...) and exits 0 only if every check passed.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vu-check.h"

enum { kMaxDevices = 64, kDefaultTimeoutS = 20 };

static int failures;

static bool vreport(const char *prefix, const char *what, bool ok, const char *fmt, va_list ap) {
  char detail[256];
  vsnprintf(detail, sizeof(detail), fmt, ap);
  // One line per check: a newline inside a detail would forge a result line.
  for (char *p = detail; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  printf("VU %s%s%s %s %s\n", prefix ? prefix : "", prefix ? "." : "", what, ok ? "ok" : "fail",
         detail);
  fflush(stdout);
  if (!ok) failures++;
  return ok;
}

bool vu_report(const char *name, bool ok, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ok = vreport(NULL, name, ok, fmt, ap);
  va_end(ap);
  return ok;
}

bool vu_check(const char *prefix, const char *what, bool ok, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ok = vreport(prefix, what, ok, fmt, ap);
  va_end(ap);
  return ok;
}

int64_t vu_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// vu.timeout=SECONDS on the kernel command line (boot.sh passes it through).
static struct vu_opts read_opts(void) {
  struct vu_opts o = {.timeout_ms = kDefaultTimeoutS * 1000};
  char line[1024];
  FILE *f = fopen("/proc/cmdline", "re");
  if (!f) return o;
  if (fgets(line, sizeof(line), f)) {
    const char *p = strstr(line, "vu.timeout=");
    if (p) {
      long s = strtol(p + strlen("vu.timeout="), NULL, 10);
      if (s > 0 && s < 3600) o.timeout_ms = (int)s * 1000;
    }
  }
  fclose(f);
  return o;
}

int main(void) {
  struct vu_opts opts = read_opts();
  static struct vu_pci_dev devs[kMaxDevices];
  int n = 0, err = vu_pci_scan(devs, kMaxDevices, &n);
  if (err) {
    vu_report("pci", false, "scan /sys/bus/pci/devices: %s", strerror(-err));
    return 1;
  }
  int edus = 0, serials = 0, pads = 0, windows = 0, csums = 0;
  for (int i = 0; i < n; i++) {
    if (devs[i].vendor == 0x1234 && devs[i].device == 0x11e8) edus++;
    if (devs[i].vendor == 0x1b36 && devs[i].device == 0x0002) serials++;
    if (devs[i].vendor == 0x1234 && devs[i].device == 0x5350) pads++;
    if (devs[i].vendor == 0x1234 && devs[i].device == 0xbad0) windows++;
    if (devs[i].vendor == 0x1234 && devs[i].device == 0x4353) csums++;
  }
  vu_report("pci", true, "%d functions, %d edu, %d serial16550, %d scratchpad, %d hostile, %d csum",
            n, edus, serials, pads, windows, csums);
  edus = serials = pads = windows = csums = 0;
  for (int i = 0; i < n; i++) {
    char prefix[24];
    if (devs[i].vendor == 0x1234 && devs[i].device == 0x11e8) {
      snprintf(prefix, sizeof(prefix), "edu%d", edus++);
      vu_check_edu(&devs[i], prefix, &opts);
    } else if (devs[i].vendor == 0x1b36 && devs[i].device == 0x0002) {
      snprintf(prefix, sizeof(prefix), "serial%d", serials++);
      vu_check_serial(&devs[i], prefix, &opts);
    } else if (devs[i].vendor == 0x1234 && devs[i].device == 0x5350) {
      snprintf(prefix, sizeof(prefix), "scratchpad%d", pads++);
      vu_check_scratchpad(&devs[i], prefix, &opts);
    } else if (devs[i].vendor == 0x1234 && devs[i].device == 0xbad0) {
      snprintf(prefix, sizeof(prefix), "window%d", windows++);
      vu_check_window(&devs[i], prefix, &opts);
    } else if (devs[i].vendor == 0x1234 && devs[i].device == 0x4353) {
      snprintf(prefix, sizeof(prefix), "csum%d", csums++);
      vu_check_csum(&devs[i], prefix, &opts);
    }
  }
  return failures ? 1 : 0;
}
