// SPDX-License-Identifier: MIT
// vfio-user wire format: the structs every message is built from, command numbers and flag
// bits. Facts from [SPEC] QEMU docs/interop/vfio-user.rst (1053bb6) and [LVU]
// nutanix/libvfio-user include/vfio-user.h (efd091b); IRQ/region numbers are linux/vfio.h's.
// All integers are in host byte order [SPEC "Protocol Specification"]. Pure data, no code.
#ifndef VFIOBOX_NATIVE_SRC_VFIO_USER_PROTOCOL_H_
#define VFIOBOX_NATIVE_SRC_VFIO_USER_PROTOCOL_H_

#include <cstddef>
#include <cstdint>

namespace vfiobox::vfio_user {

// [SPEC "Commands"], [LVU enum vfio_user_command]. 14 is unused (an old DIRTY_PAGES).
enum Command : uint16_t {
  kCmdVersion = 1,
  kCmdDmaMap = 2,
  kCmdDmaUnmap = 3,
  kCmdDeviceGetInfo = 4,
  kCmdDeviceGetRegionInfo = 5,
  kCmdDeviceGetRegionIoFds = 6,
  kCmdDeviceGetIrqInfo = 7,
  kCmdDeviceSetIrqs = 8,
  kCmdRegionRead = 9,
  kCmdRegionWrite = 10,
  kCmdDmaRead = 11,
  kCmdDmaWrite = 12,
  kCmdDeviceReset = 13,
  kCmdRegionWriteMulti = 15,
  kCmdDeviceFeature = 16,
  kCmdMigDataRead = 17,
  kCmdMigDataWrite = 18,
};
constexpr uint16_t kCmdMax = 18;

// Header flags [SPEC "Header"]: bits 0-3 message type, bit 4 No_reply, bit 5 Error.
constexpr uint32_t kFlagTypeMask = 0xf;
constexpr uint32_t kFlagTypeCommand = 0;
constexpr uint32_t kFlagTypeReply = 1;
constexpr uint32_t kFlagNoReply = 1u << 4;
constexpr uint32_t kFlagError = 1u << 5;

/** Every message starts with this [SPEC "Header"; LVU struct vfio_user_header]. */
struct Header {
  uint16_t msg_id;    // echoed by the reply; not unique [SPEC]
  uint16_t command;   // also set in the reply
  uint32_t msg_size;  // the whole message, header included
  uint32_t flags;
  uint32_t error;  // errno of an Error reply; reserved in commands
};
static_assert(sizeof(Header) == 16);
static_assert(offsetof(Header, msg_id) == 0 && offsetof(Header, command) == 2);
static_assert(offsetof(Header, msg_size) == 4 && offsetof(Header, flags) == 8);
static_assert(offsetof(Header, error) == 12);
constexpr size_t kHeaderSize = sizeof(Header);

/** VERSION payload, followed by optional NUL-terminated JSON [SPEC "VFIO_USER_VERSION"]. */
struct Version {
  uint16_t major;
  uint16_t minor;
};
static_assert(sizeof(Version) == 4 && offsetof(Version, minor) == 2);

// DMA_MAP flags [SPEC "VFIO_USER_DMA_MAP"]; DMA_UNMAP's ALL flag is [LVU]'s
// VFIO_DMA_UNMAP_FLAG_ALL (the spec says the unmap flags are unused).
constexpr uint32_t kDmaFlagRead = 1u << 0;
constexpr uint32_t kDmaFlagWrite = 1u << 1;
constexpr uint32_t kDmaUnmapFlagAll = 1u << 1;

/** DMA_MAP request [SPEC; LVU struct vfio_user_dma_map]; one optional fd. */
struct DmaMap {
  uint32_t argsz;  // the size of this struct (DMA_MAP's reply has no payload)
  uint32_t flags;
  uint64_t offset;  // file offset in the fd
  uint64_t addr;    // IOVA
  uint64_t size;
};
static_assert(sizeof(DmaMap) == 32);
static_assert(offsetof(DmaMap, offset) == 8 && offsetof(DmaMap, addr) == 16);
static_assert(offsetof(DmaMap, size) == 24);

/** DMA_UNMAP request and reply [SPEC; LVU struct vfio_user_dma_unmap without the bitmap]. */
struct DmaUnmap {
  uint32_t argsz;
  uint32_t flags;
  uint64_t addr;
  uint64_t size;
};
static_assert(sizeof(DmaUnmap) == 24);
static_assert(offsetof(DmaUnmap, addr) == 8 && offsetof(DmaUnmap, size) == 16);

// linux/vfio.h VFIO_DEVICE_FLAGS_*
constexpr uint32_t kDeviceFlagReset = 1u << 0;
constexpr uint32_t kDeviceFlagPci = 1u << 1;

/** DEVICE_GET_INFO request and reply [SPEC; linux/vfio.h struct vfio_device_info]. */
struct DeviceInfo {
  uint32_t argsz;
  uint32_t flags;
  uint32_t num_regions;
  uint32_t num_irqs;
};
static_assert(sizeof(DeviceInfo) == 16 && offsetof(DeviceInfo, num_irqs) == 12);

// linux/vfio.h VFIO_REGION_INFO_FLAG_* and VFIO_REGION_INFO_CAP_SPARSE_MMAP
constexpr uint32_t kRegionFlagRead = 1u << 0;
constexpr uint32_t kRegionFlagWrite = 1u << 1;
constexpr uint32_t kRegionFlagMmap = 1u << 2;
constexpr uint32_t kRegionFlagCaps = 1u << 3;
constexpr uint16_t kCapSparseMmap = 1;

/** DEVICE_GET_REGION_INFO request and reply [SPEC; struct vfio_region_info]. */
struct RegionInfo {
  uint32_t argsz;
  uint32_t flags;
  uint32_t index;
  uint32_t cap_offset;  // from the start of this struct
  uint64_t size;
  uint64_t offset;  // mmap offset in the region fd
};
static_assert(sizeof(RegionInfo) == 32);
static_assert(offsetof(RegionInfo, cap_offset) == 12 && offsetof(RegionInfo, size) == 16);
static_assert(offsetof(RegionInfo, offset) == 24);

/** Capability header; `next` is an offset from the start of RegionInfo, 0 ends the chain. */
struct CapHeader {
  uint16_t id;
  uint16_t version;
  uint32_t next;
};
static_assert(sizeof(CapHeader) == 8 && offsetof(CapHeader, next) == 4);

/** VFIO_REGION_INFO_CAP_SPARSE_MMAP (version 1), followed by nr_areas SparseArea. */
struct SparseMmap {
  CapHeader header;
  uint32_t nr_areas;
  uint32_t reserved;
};
struct SparseArea {
  uint64_t offset;  // from the region's start
  uint64_t size;
};
static_assert(sizeof(SparseMmap) == 16 && offsetof(SparseMmap, nr_areas) == 8);
static_assert(sizeof(SparseArea) == 16 && offsetof(SparseArea, size) == 8);

// linux/vfio.h VFIO_IRQ_INFO_*
constexpr uint32_t kIrqInfoEventfd = 1u << 0;
constexpr uint32_t kIrqInfoMaskable = 1u << 1;
constexpr uint32_t kIrqInfoAutomasked = 1u << 2;
constexpr uint32_t kIrqInfoNoresize = 1u << 3;

/** DEVICE_GET_IRQ_INFO request and reply [SPEC; struct vfio_irq_info]. */
struct IrqInfo {
  uint32_t argsz;
  uint32_t flags;
  uint32_t index;
  uint32_t count;
};
static_assert(sizeof(IrqInfo) == 16 && offsetof(IrqInfo, count) == 12);

// linux/vfio.h VFIO_IRQ_SET_*: exactly one DATA and one ACTION flag [SPEC].
constexpr uint32_t kIrqDataNone = 1u << 0;
constexpr uint32_t kIrqDataBool = 1u << 1;
constexpr uint32_t kIrqDataEventfd = 1u << 2;
constexpr uint32_t kIrqActionMask = 1u << 3;
constexpr uint32_t kIrqActionUnmask = 1u << 4;
constexpr uint32_t kIrqActionTrigger = 1u << 5;
constexpr uint32_t kIrqDataMask = kIrqDataNone | kIrqDataBool | kIrqDataEventfd;
constexpr uint32_t kIrqActionMaskAll = kIrqActionMask | kIrqActionUnmask | kIrqActionTrigger;

/** DEVICE_SET_IRQS request [SPEC; struct vfio_irq_set]; DATA_BOOL appends count bytes. */
struct IrqSet {
  uint32_t argsz;
  uint32_t flags;
  uint32_t index;
  uint32_t start;
  uint32_t count;
};
static_assert(sizeof(IrqSet) == 20 && offsetof(IrqSet, start) == 12);
static_assert(offsetof(IrqSet, count) == 16);

/** REGION_READ/WRITE request and reply head [SPEC "VFIO_USER_REGION_READ"]. */
struct RegionAccess {
  uint64_t offset;
  uint32_t region;
  uint32_t count;
};
static_assert(sizeof(RegionAccess) == 16 && offsetof(RegionAccess, region) == 8);
static_assert(offsetof(RegionAccess, count) == 12);

/** DMA_READ/WRITE (server to client) head [SPEC "VFIO_USER_DMA_READ"]. */
struct DmaAccess {
  uint64_t addr;
  uint64_t count;
};
static_assert(sizeof(DmaAccess) == 16 && offsetof(DmaAccess, count) == 8);

// Defaults when the peer's JSON omits a key [SPEC "VFIO_USER_VERSION"].
constexpr uint32_t kDefaultMaxMsgFds = 1;
constexpr uint32_t kDefaultMaxDataXferSize = 1048576;
constexpr uint32_t kDefaultMaxDmaMaps = 65535;
constexpr uint64_t kPageSize4k = 4096;
/** sealed DMA map fds a core keeps open for DMA windows (QEMU maps guest RAM in a handful) */
constexpr int kMaxWindowFds = 64;

/** vfio's PCI region/IRQ numbering, reused by vfio-user (linux/vfio.h). */
constexpr uint32_t kPciNumRegions = 9;
constexpr uint32_t kPciNumIrqs = 5;

}  // namespace vfiobox::vfio_user

#endif  // VFIOBOX_NATIVE_SRC_VFIO_USER_PROTOCOL_H_
