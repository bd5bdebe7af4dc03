// SPDX-License-Identifier: MIT
// vfio-user wire format: command numbers, header flags, struct sizes and field offsets, and pure
// encoders/decoders over DataView for every message the TS client sends or receives.
//
// Sources: [SPEC] QEMU docs/interop/vfio-user.rst (1053bb6), [LVU] nutanix/libvfio-user
// include/vfio-user.h (efd091b), [VFIO-H] <linux/vfio.h> for the region/IRQ numbers vfio-user
// reuses. All integers are in host byte order [SPEC "Protocol Specification"]. Every u64 field is
// a bigint here (wire-exact, so hostile values survive a round trip); the client converts.
// Decoders check sizes and throw ProtocolError('vfio-user:<CMD>', EINVAL, ...).
//
// The codec lives in protocol/, one module per group of commands; this file is its public face.

export * from './protocol/commands.js';
export * from './protocol/device.js';
export * from './protocol/dma.js';
export * from './protocol/version.js';
export * from './protocol/wire.js';
