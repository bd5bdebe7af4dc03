// SPDX-License-Identifier: MIT
/*
 * vfio_bench.c - the C baseline for vfiobox's TS API benchmark (bench/README.md).
 *
 * For one PCI device (an edu, bound to vfio-pci) and one IOMMU backend it times, with the
 * plainest possible C loop over the raw ioctls:
 *   dma-4k    N x (map 4 KiB at a fixed IOVA, unmap it)            one ioctl each
 *   dma-2m    N x (map 2 MiB at a 2 MiB-aligned IOVA, unmap it)     from a 2 MiB-aligned buffer
 *   dma-4k as impl "c-batch": K x map 4 KiB at consecutive IOVAs, then ONE unmap of the
 *             whole K*4 KiB range (the ioctl sequence behind the TS dmaMapBatch + dmaUnmap)
 *   dma-2m as impl "c-batch" (ops "batch2m"): the same with K2 maps of 2 MiB each, from a
 *             2 MiB-aligned buffer of K2 x 2 MiB
 *   bar-read  N x volatile 32-bit load of BAR0 offset 0 (edu ident) through an mmap
 * and prints one JSON line per measurement:
 *   {"impl":"c","backend":"legacy","op":"dma-4k","n":2000,"ns_per_op":12345.6}
 *
 * Backends:
 *   legacy  : /dev/vfio/vfio container + /dev/vfio/<group>, VFIO_TYPE1v2_IOMMU,
 *             VFIO_IOMMU_MAP_DMA / VFIO_IOMMU_UNMAP_DMA
 *   iommufd : /dev/vfio/devices/vfioN + /dev/iommu, VFIO_DEVICE_BIND_IOMMUFD,
 *             IOMMU_IOAS_ALLOC, VFIO_DEVICE_ATTACH_IOMMUFD_PT, IOMMU_IOAS_MAP / IOMMU_IOAS_UNMAP
 *
 * Usage: vfio_bench --bdf 0000:00:04.0 --backend legacy|iommufd
 *                   [--n4k N] [--n2m N] [--nbar N] [--batch K] [--batch2m K2]
 *                   [--ops dma-4k,dma-2m,bar-read,batch,batch2m]
 * Exit: 0 ok, 1 a VFIO step failed (message on stderr), 2 usage.
 * Build: gcc -O2 -Wall -Wextra -o vfio_bench vfio_bench.c
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>
#include <linux/vfio.h>

/* ---- Linux 6.12 uAPI that bookworm's linux-libc-dev (6.1) lacks ----
 * vfio.h: the cdev ioctls; iommufd.h: the whole file. Numbers and layouts from
 * include/uapi/linux/vfio.h and include/uapi/linux/iommufd.h of 6.12. */
struct vb_bind_iommufd {
	__u32 argsz;
	__u32 flags;
	__s32 iommufd;
	__u32 out_devid;
};
struct vb_attach_iommufd_pt {
	__u32 argsz;
	__u32 flags;
	__u32 pt_id;
};
#define VB_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)	   /* _IO(';', 118) */
#define VB_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19) /* _IO(';', 119) */

struct vb_ioas_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_ioas_id;
};
struct vb_ioas_map {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__u32 __reserved;
	__aligned_u64 user_va;
	__aligned_u64 length;
	__aligned_u64 iova;
};
struct vb_ioas_unmap {
	__u32 size;
	__u32 ioas_id;
	__aligned_u64 iova;
	__aligned_u64 length;
};
#define VB_IOMMUFD_TYPE ';'
#define VB_IOMMU_IOAS_ALLOC _IO(VB_IOMMUFD_TYPE, 0x81)
#define VB_IOMMU_IOAS_MAP _IO(VB_IOMMUFD_TYPE, 0x85)
#define VB_IOMMU_IOAS_UNMAP _IO(VB_IOMMUFD_TYPE, 0x86)
#define VB_IOAS_MAP_FIXED_IOVA (1u << 0)
#define VB_IOAS_MAP_WRITEABLE (1u << 1)
#define VB_IOAS_MAP_READABLE (1u << 2)

_Static_assert(sizeof(struct vb_bind_iommufd) == 16, "vfio_device_bind_iommufd");
_Static_assert(sizeof(struct vb_attach_iommufd_pt) == 12, "vfio_device_attach_iommufd_pt");
_Static_assert(sizeof(struct vb_ioas_alloc) == 12, "iommu_ioas_alloc");
_Static_assert(sizeof(struct vb_ioas_map) == 40, "iommu_ioas_map");
_Static_assert(offsetof(struct vb_ioas_map, user_va) == 16, "iommu_ioas_map.user_va");
_Static_assert(offsetof(struct vb_ioas_map, iova) == 32, "iommu_ioas_map.iova");
_Static_assert(sizeof(struct vb_ioas_unmap) == 24, "iommu_ioas_unmap");
_Static_assert(offsetof(struct vb_ioas_unmap, iova) == 8, "iommu_ioas_unmap.iova");
_Static_assert(VB_DEVICE_BIND_IOMMUFD == 0x3b76, "BIND number");
_Static_assert(VB_DEVICE_ATTACH_IOMMUFD_PT == 0x3b77, "ATTACH number");
_Static_assert(VB_IOMMU_IOAS_ALLOC == 0x3b81, "IOAS_ALLOC number");
_Static_assert(VB_IOMMU_IOAS_MAP == 0x3b85, "IOAS_MAP number");
_Static_assert(VB_IOMMU_IOAS_UNMAP == 0x3b86, "IOAS_UNMAP number");

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define IOVA_4K 0x100000ull		/* 1 MiB, below edu's 28-bit default DMA mask */
#define IOVA_2M 0x200000ull		/* 2 MiB-aligned */
#define IOVA_BATCH 0x1000000ull		/* 16 MiB: K consecutive 4 KiB pages from here */

enum backend { B_LEGACY, B_IOMMUFD };
static const char *backend_name[] = { "legacy", "iommufd" };

struct vb {
	enum backend backend;
	const char *bdf;
	int container, group, iommufd, dev;
	__u32 ioas_id;
};

static void die(const char *what)
{
	fprintf(stderr, "vfio_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void die_msg(const char *msg)
{
	fprintf(stderr, "vfio_bench: %s\n", msg);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------- open ---------------- */

static void open_legacy(struct vb *v)
{
	char link[256], path[PATH_MAX];
	snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/iommu_group", v->bdf);
	ssize_t r = readlink(path, link, sizeof link - 1);
	if (r < 0)
		die(path);
	link[r] = 0;
	const char *grp = strrchr(link, '/');
	snprintf(path, sizeof path, "/dev/vfio/%s", grp ? grp + 1 : link);

	v->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (v->container < 0)
		die("/dev/vfio/vfio");
	if (ioctl(v->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION)
		die_msg("VFIO_GET_API_VERSION mismatch");
	if (ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0)
		die_msg("VFIO_TYPE1v2_IOMMU not supported");
	v->group = open(path, O_RDWR | O_CLOEXEC);
	if (v->group < 0)
		die(path);
	struct vfio_group_status st = { .argsz = sizeof st };
	if (ioctl(v->group, VFIO_GROUP_GET_STATUS, &st))
		die("VFIO_GROUP_GET_STATUS");
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE))
		die_msg("group not viable");
	if (ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container))
		die("VFIO_GROUP_SET_CONTAINER");
	if (ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		die("VFIO_SET_IOMMU");
	v->dev = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, v->bdf);
	if (v->dev < 0)
		die("VFIO_GROUP_GET_DEVICE_FD");
}

static void open_iommufd(struct vb *v)
{
	char dir[PATH_MAX], path[PATH_MAX] = "";
	snprintf(dir, sizeof dir, "/sys/bus/pci/devices/%s/vfio-dev", v->bdf);
	DIR *d = opendir(dir);
	if (!d)
		die(dir);
	for (struct dirent *e; (e = readdir(d));) {
		if (strncmp(e->d_name, "vfio", 4) == 0) {
			snprintf(path, sizeof path, "/dev/vfio/devices/%s", e->d_name);
			break;
		}
	}
	closedir(d);
	if (!path[0])
		die_msg("no vfio-dev/vfioN for the device");

	v->dev = open(path, O_RDWR | O_CLOEXEC);
	if (v->dev < 0)
		die(path);
	v->iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (v->iommufd < 0)
		die("/dev/iommu");
	struct vb_bind_iommufd bind = { .argsz = sizeof bind, .iommufd = v->iommufd };
	if (ioctl(v->dev, VB_DEVICE_BIND_IOMMUFD, &bind))
		die("VFIO_DEVICE_BIND_IOMMUFD");
	struct vb_ioas_alloc alloc = { .size = sizeof alloc };
	if (ioctl(v->iommufd, VB_IOMMU_IOAS_ALLOC, &alloc))
		die("IOMMU_IOAS_ALLOC");
	v->ioas_id = alloc.out_ioas_id;
	struct vb_attach_iommufd_pt at = { .argsz = sizeof at, .pt_id = v->ioas_id };
	if (ioctl(v->dev, VB_DEVICE_ATTACH_IOMMUFD_PT, &at))
		die("VFIO_DEVICE_ATTACH_IOMMUFD_PT");
}

/* ---------------- the measured operations ---------------- */

static inline int dma_map(const struct vb *v, void *va, uint64_t iova, uint64_t len)
{
	if (v->backend == B_LEGACY) {
		struct vfio_iommu_type1_dma_map m = {
			.argsz = sizeof m,
			.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
			.vaddr = (uintptr_t)va,
			.iova = iova,
			.size = len,
		};
		return ioctl(v->container, VFIO_IOMMU_MAP_DMA, &m);
	}
	struct vb_ioas_map m = {
		.size = sizeof m,
		.flags = VB_IOAS_MAP_FIXED_IOVA | VB_IOAS_MAP_READABLE | VB_IOAS_MAP_WRITEABLE,
		.ioas_id = v->ioas_id,
		.user_va = (uintptr_t)va,
		.length = len,
		.iova = iova,
	};
	return ioctl(v->iommufd, VB_IOMMU_IOAS_MAP, &m);
}

static inline int dma_unmap(const struct vb *v, uint64_t iova, uint64_t len)
{
	if (v->backend == B_LEGACY) {
		struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof u, .iova = iova, .size = len };
		if (ioctl(v->container, VFIO_IOMMU_UNMAP_DMA, &u))
			return -1;
		return u.size == len ? 0 : (errno = EIO, -1);
	}
	struct vb_ioas_unmap u = { .size = sizeof u, .ioas_id = v->ioas_id, .iova = iova, .length = len };
	if (ioctl(v->iommufd, VB_IOMMU_IOAS_UNMAP, &u))
		return -1;
	return u.length == len ? 0 : (errno = EIO, -1);
}

/* 2 MiB-aligned anonymous memory of `len` bytes, touched so that no page fault is timed */
static void *alloc_aligned(size_t len, size_t align)
{
	size_t raw_len = len + align;
	uint8_t *raw = mmap(NULL, raw_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		die("mmap anonymous");
	uintptr_t p = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
	/* give the slack back so only the aligned part stays mapped */
	if (p > (uintptr_t)raw)
		munmap(raw, p - (uintptr_t)raw);
	size_t tail = (uintptr_t)raw + raw_len - (p + len);
	if (tail)
		munmap((void *)(p + len), tail);
	memset((void *)p, 0x5a, len);
	return (void *)p;
}

static void emit(const struct vb *v, const char *impl, const char *op, long n, uint64_t ns, long extra_k)
{
	printf("{\"impl\":\"%s\",\"backend\":\"%s\",\"op\":\"%s\",\"n\":%ld,\"ns_per_op\":%.1f", impl,
	       backend_name[v->backend], op, n, (double)ns / (double)n);
	if (extra_k > 0)
		printf(",\"batch\":%ld", extra_k);
	printf("}\n");
	fflush(stdout);
}

static void bench_dma(const struct vb *v, const char *op, void *buf, uint64_t iova, uint64_t len, long n)
{
	long warm = n / 10 + 1;
	for (long i = 0; i < warm; i++) {
		if (dma_map(v, buf, iova, len))
			die("map (warm-up)");
		if (dma_unmap(v, iova, len))
			die("unmap (warm-up)");
	}
	uint64_t t0 = now_ns();
	for (long i = 0; i < n; i++) {
		if (dma_map(v, buf, iova, len))
			die("map");
		if (dma_unmap(v, iova, len))
			die("unmap");
	}
	emit(v, "c", op, n, now_ns() - t0, 0);
}

/* K maps of `chunk` bytes at consecutive IOVAs, one unmap of the range; n is rounded to rounds
 * of K */
static void bench_batch(const struct vb *v, const char *op, uint8_t *buf, uint64_t chunk, long k,
			long n)
{
	long rounds = n / k > 0 ? n / k : 1;
	uint64_t span = (uint64_t)k * chunk;
	for (long w = 0; w < rounds / 10 + 1; w++) {
		for (long i = 0; i < k; i++)
			if (dma_map(v, buf + i * chunk, IOVA_BATCH + i * chunk, chunk))
				die("batch map (warm-up)");
		if (dma_unmap(v, IOVA_BATCH, span))
			die("batch unmap (warm-up)");
	}
	uint64_t t0 = now_ns();
	for (long r = 0; r < rounds; r++) {
		for (long i = 0; i < k; i++)
			if (dma_map(v, buf + i * chunk, IOVA_BATCH + i * chunk, chunk))
				die("batch map");
		if (dma_unmap(v, IOVA_BATCH, span))
			die("batch unmap");
	}
	emit(v, "c-batch", op, rounds * k, now_ns() - t0, k);
}

static void bench_bar(const struct vb *v, long n)
{
	struct vfio_region_info ri = { .argsz = sizeof ri, .index = VFIO_PCI_BAR0_REGION_INDEX };
	if (ioctl(v->dev, VFIO_DEVICE_GET_REGION_INFO, &ri))
		die("VFIO_DEVICE_GET_REGION_INFO(BAR0)");
	if (!(ri.flags & VFIO_REGION_INFO_FLAG_MMAP))
		die_msg("BAR0 is not mmap-able");
	void *m = mmap(NULL, ri.size, PROT_READ | PROT_WRITE, MAP_SHARED, v->dev, (off_t)ri.offset);
	if (m == MAP_FAILED)
		die("mmap BAR0");
	const volatile uint32_t *ident = (const volatile uint32_t *)m;
	uint32_t first = *ident;
	if (first == 0xffffffffu || (first & 0xffff) != 0x00ed) {
		fprintf(stderr, "vfio_bench: BAR0 ident reads 0x%08x, not an edu\n", first);
		exit(1);
	}
	uint32_t acc = 0;
	for (long i = 0; i < n / 10 + 1; i++)
		acc ^= *ident;
	uint64_t t0 = now_ns();
	for (long i = 0; i < n; i++)
		acc ^= *ident;
	uint64_t dt = now_ns() - t0;
	if (acc == 0xdeadbeef) /* keeps acc alive; never true for an edu */
		fputs("", stderr);
	emit(v, "c", "bar-read", n, dt, 0);
	munmap(m, ri.size);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: vfio_bench --bdf BDF --backend legacy|iommufd [--n4k N] [--n2m N] [--nbar N]\n"
		"                  [--batch K] [--batch2m K2] [--ops dma-4k,dma-2m,bar-read,batch,batch2m]\n");
	exit(2);
}

static long num_arg(const char *s)
{
	char *end;
	long v = strtol(s, &end, 0);
	if (*s == 0 || *end != 0 || v <= 0)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	struct vb v = { .container = -1, .group = -1, .iommufd = -1, .dev = -1 };
	const char *backend = NULL, *ops = "dma-4k,dma-2m,bar-read,batch,batch2m";
	long n4k = 2000, n2m = 200, nbar = 200000, k = 64, k2m = 8;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			usage();
		const char *val = argv[++i];
		if (!strcmp(a, "--bdf"))
			v.bdf = val;
		else if (!strcmp(a, "--backend"))
			backend = val;
		else if (!strcmp(a, "--n4k"))
			n4k = num_arg(val);
		else if (!strcmp(a, "--n2m"))
			n2m = num_arg(val);
		else if (!strcmp(a, "--nbar"))
			nbar = num_arg(val);
		else if (!strcmp(a, "--batch"))
			k = num_arg(val);
		else if (!strcmp(a, "--batch2m"))
			k2m = num_arg(val);
		else if (!strcmp(a, "--ops"))
			ops = val;
		else
			usage();
	}
	if (!v.bdf || !backend)
		usage();
	if (!strcmp(backend, "legacy"))
		v.backend = B_LEGACY;
	else if (!strcmp(backend, "iommufd"))
		v.backend = B_IOMMUFD;
	else
		usage();

	if (v.backend == B_LEGACY)
		open_legacy(&v);
	else
		open_iommufd(&v);

	char list[256];
	snprintf(list, sizeof list, ",%s,", ops);
	if (strstr(list, ",dma-4k,")) {
		uint8_t *b = alloc_aligned(4 * KIB, 4 * KIB);
		bench_dma(&v, "dma-4k", b, IOVA_4K, 4 * KIB, n4k);
		munmap(b, 4 * KIB);
	}
	if (strstr(list, ",batch,")) {
		uint8_t *b = alloc_aligned((size_t)k * 4 * KIB, 4 * KIB);
		bench_batch(&v, "dma-4k", b, 4 * KIB, k, n4k);
		munmap(b, (size_t)k * 4 * KIB);
	}
	if (strstr(list, ",batch2m,")) {
		uint8_t *b = alloc_aligned((size_t)k2m * 2 * MIB, 2 * MIB);
		bench_batch(&v, "dma-2m", b, 2 * MIB, k2m, n2m);
		munmap(b, (size_t)k2m * 2 * MIB);
	}
	if (strstr(list, ",dma-2m,")) {
		uint8_t *b = alloc_aligned(2 * MIB, 2 * MIB);
		bench_dma(&v, "dma-2m", b, IOVA_2M, 2 * MIB, n2m);
		munmap(b, 2 * MIB);
	}
	if (strstr(list, ",bar-read,"))
		bench_bar(&v, nbar);

	close(v.dev);
	if (v.group >= 0)
		close(v.group);
	if (v.container >= 0)
		close(v.container);
	if (v.iommufd >= 0)
		close(v.iommufd);
	return 0;
}
