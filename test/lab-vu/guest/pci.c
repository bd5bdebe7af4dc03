// SPDX-License-Identifier: MIT
// PCI access through sysfs (Documentation/PCI/sysfs-pci.rst): the `config` file reads and
// writes config space at its file offset, `vendor`/`device` hold "0x%04x".
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vu-check.h"

static const char kPciDevices[] = "/sys/bus/pci/devices";

static int read_hex_attr(const char *dir, const char *attr, uint16_t *value) {
  char path[160], text[32];
  snprintf(path, sizeof(path), "%s/%s", dir, attr);
  FILE *f = fopen(path, "re");
  if (!f) return -errno;
  bool got = fgets(text, sizeof(text), f) != NULL;
  fclose(f);
  if (!got) return -EIO;
  *value = (uint16_t)strtoul(text, NULL, 16);
  return 0;
}

int vu_pci_scan(struct vu_pci_dev *out, int max, int *count) {
  struct dirent **names;
  int n = scandir(kPciDevices, &names, NULL, alphasort);
  if (n < 0) return -errno;
  *count = 0;
  for (int i = 0; i < n; i++) {
    const char *name = names[i]->d_name;
    if (name[0] != '.' && *count < max && strlen(name) < sizeof(out->bdf)) {
      struct vu_pci_dev *d = &out[*count];
      snprintf(d->bdf, sizeof(d->bdf), "%s", name);
      snprintf(d->sysfs, sizeof(d->sysfs), "%s/%s", kPciDevices, name);
      if (read_hex_attr(d->sysfs, "vendor", &d->vendor) == 0 &&
          read_hex_attr(d->sysfs, "device", &d->device) == 0)
        (*count)++;
    }
    free(names[i]);
  }
  free(names);
  return 0;
}

static int config_io(const struct vu_pci_dev *dev, unsigned offset, void *buf, size_t len,
                     bool write) {
  char path[128];
  snprintf(path, sizeof(path), "%s/config", dev->sysfs);
  int fd = open(path, (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = write ? pwrite(fd, buf, len, offset) : pread(fd, buf, len, offset);
  int err = n < 0 ? -errno : ((size_t)n == len ? 0 : -EIO);
  close(fd);
  return err;
}

int vu_pci_config_read(const struct vu_pci_dev *dev, unsigned offset, void *buf, size_t len) {
  return config_io(dev, offset, buf, len, false);
}

int vu_pci_config_write(const struct vu_pci_dev *dev, unsigned offset, const void *buf,
                        size_t len) {
  return config_io(dev, offset, (void *)buf, len, true);
}

int vu_sysfs_write(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  size_t len = strlen(text);
  ssize_t n = write(fd, text, len);
  int err = n < 0 ? -errno : ((size_t)n == len ? 0 : -EIO);
  close(fd);
  return err;
}

int vu_pci_child(const struct vu_pci_dev *dev, const char *subdir, char *name, size_t len) {
  char path[160];
  snprintf(path, sizeof(path), "%s/%s", dev->sysfs, subdir);
  DIR *d = opendir(path);
  if (!d) return -errno;
  int err = -ENOENT;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(name, len, "%s", e->d_name);
    err = 0;
    break;
  }
  closedir(d);
  return err;
}

int vu_pci_enable_memory(const struct vu_pci_dev *dev) {
  uint16_t cmd = 0;
  int err = vu_pci_config_read(dev, kPciCommand, &cmd, sizeof(cmd));
  cmd |= kPciCommandMemory;
  if (!err) err = vu_pci_config_write(dev, kPciCommand, &cmd, sizeof(cmd));
  return err;
}

void *vu_pci_map_bar(const struct vu_pci_dev *dev, int bar, size_t len) {
  char path[128];
  snprintf(path, sizeof(path), "%s/resource%d", dev->sysfs, bar);
  int fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
  if (fd < 0) return NULL;
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int saved = errno;
  close(fd);
  errno = saved;
  return p == MAP_FAILED ? NULL : p;
}

uint64_t vu_phys_addr(const void *va) {
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  uint64_t entry = 0;
  off_t at = (off_t)((uintptr_t)va / 4096 * sizeof(entry));
  ssize_t n = pread(fd, &entry, sizeof(entry), at);
  close(fd);
  // bit 63: present; bits 0-54: the page frame number (0 without CAP_SYS_ADMIN)
  if (n != (ssize_t)sizeof(entry) || !(entry >> 63)) return 0;
  return (entry & ((1ull << 55) - 1)) * 4096 + (uintptr_t)va % 4096;
}
