// SPDX-License-Identifier: MIT
// vu-check: the guest side of lab-vu (test/lab-vu/README.md). A static program in the guest's
// initramfs that finds the vfio-user devices QEMU exposes, exercises them through the guest
// kernel's own interfaces (sysfs, uio, the 8250 tty) and prints one line per check on stdout:
//   VU <name> ok|fail <detail>
#ifndef VU_CHECK_H_
#define VU_CHECK_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Identifies one PCI function as listed in /sys/bus/pci/devices.
struct vu_pci_dev {
  char bdf[16];     // "0000:00:10.0"
  char sysfs[96];   // "/sys/bus/pci/devices/0000:00:10.0"
  uint16_t vendor;  // config offset 0x00
  uint16_t device;  // config offset 0x02
};

// Per-run settings, from the kernel command line (vu.timeout=SECONDS).
struct vu_opts {
  int timeout_ms;  // bound for every wait on the device (irq, tty bytes, busy bits)
};

// Prints "VU <name> ok|fail <detail>" and counts failures. Returns ok.
bool vu_report(const char *name, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
// The same for one device's check: the name is "<prefix>.<what>" ("edu0.ident").
bool vu_check(const char *prefix, const char *what, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

// Monotonic milliseconds.
int64_t vu_now_ms(void);

// PCI via sysfs (pci.c). All return 0 or -errno.
int vu_pci_scan(struct vu_pci_dev *out, int max, int *count);
int vu_pci_config_read(const struct vu_pci_dev *dev, unsigned offset, void *buf, size_t len);
int vu_pci_config_write(const struct vu_pci_dev *dev, unsigned offset, const void *buf, size_t len);
int vu_sysfs_write(const char *path, const char *text);
// Finds the first entry of <dev sysfs>/<subdir>/ (e.g. "uio" -> "uio0", "tty" -> "ttyS4").
int vu_pci_child(const struct vu_pci_dev *dev, const char *subdir, char *name, size_t len);
// Sets the Command register's memory-space bit: it gates every BAR access (PCI 3.0 6.2.2), and
// the kernel leaves it clear for a device no driver enabled.
int vu_pci_enable_memory(const struct vu_pci_dev *dev);
// mmaps `len` bytes of BAR `bar` (sysfs resource<bar>, shared, read-write); NULL and errno.
void *vu_pci_map_bar(const struct vu_pci_dev *dev, int bar, size_t len);
// The guest-physical address of `va` in this process (/proc/self/pagemap,
// Documentation/admin-guide/mm/pagemap.rst; needs root), or 0. Lock the page first.
uint64_t vu_phys_addr(const void *va);

// Device checks (edu.c, serial.c, scratchpad.c). `prefix` is "edu0", "serial0", ...
void vu_check_edu(const struct vu_pci_dev *dev, const char *prefix, const struct vu_opts *opts);
void vu_check_serial(const struct vu_pci_dev *dev, const char *prefix, const struct vu_opts *opts);
// scratchpad.c: a memory-backed BAR area (plugins/c/scratchpad)
void vu_check_scratchpad(const struct vu_pci_dev *dev, const char *prefix,
                         const struct vu_opts *opts);
// window.c: a DMA window over a page of guest RAM (the hostile fixture, as hostile-window)
void vu_check_window(const struct vu_pci_dev *dev, const char *prefix, const struct vu_opts *opts);
// csum.c: the csum plugin (plugins/c/csum) checksumming a guest buffer through its DMA window
void vu_check_csum(const struct vu_pci_dev *dev, const char *prefix, const struct vu_opts *opts);

// PCI config space layout (PCI Local Bus Specification 3.0, section 6.2).
enum {
  kPciCommand = 0x04,
  kPciStatus = 0x06,
  kPciCommandMemory = 1u << 1,
  kPciCommandIntxDisable = 1u << 10,
  kPciStatusInterrupt = 1u << 3,
};

#endif  // VU_CHECK_H_
