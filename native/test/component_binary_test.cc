// SPDX-License-Identifier: MIT
// FindMainCoreModule (wasm/component_binary.h) on hand-made binaries: the core module that
// exports the device's describe is found among the component's modules (the others are
// wit-component's plumbing); anything else (a core module, truncation, a section running past
// the end, a LEB that does not end, no such module or two) is refused with a reason, never
// read past the end. Built with ASan + UBSan by run.sh.
#include "native/src/wasm/component_binary.h"

#include <cstdint>
#include <string>
#include <vector>

#include "native/test/check.h"

namespace vfiobox::test {
namespace {

using Bytes = std::vector<uint8_t>;

const Bytes kComponentHead = {0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00};
const Bytes kCoreHead = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};

Bytes Section(uint8_t id, const Bytes& body) {
  Bytes out = {id, static_cast<uint8_t>(body.size())};  // bodies here are < 128 bytes
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

/** a core module whose export section exports function 0 as `name` */
Bytes CoreExporting(const std::string& name) {
  Bytes exports = {0x01, static_cast<uint8_t>(name.size())};
  exports.insert(exports.end(), name.begin(), name.end());
  exports.insert(exports.end(), {0x00, 0x00});  // func 0
  Bytes out = kCoreHead;
  Bytes section = Section(7, exports);
  out.insert(out.end(), section.begin(), section.end());
  return out;
}

const Bytes kMain = CoreExporting("vfiobox:device/device@0.1.0#describe");
const Bytes kShim = CoreExporting("0");

Bytes Component(std::initializer_list<Bytes> sections) {
  Bytes out = kComponentHead;
  for (const Bytes& s : sections) out.insert(out.end(), s.begin(), s.end());
  return out;
}

bool Find(const Bytes& b, wasm::CoreModuleSlice* slice, std::string* why) {
  return wasm::FindMainCoreModule(b.data(), b.size(), slice, why);
}

void FindsTheMainModule() {
  Bytes c = Component(
      {Section(0, {0x01, 'x'}), Section(1, kMain), Section(1, kShim), Section(11, {0x00})});
  wasm::CoreModuleSlice slice;
  std::string why;
  CHECK(Find(c, &slice, &why));
  CHECK_EQ(slice.size, kMain.size());
  CHECK(slice.data == c.data() + kComponentHead.size() + 4 + 2);
  CHECK(Bytes(slice.data, slice.data + slice.size) == kMain);
  // the shim first: still the main one
  Bytes d = Component({Section(1, kShim), Section(1, kMain)});
  CHECK(Find(d, &slice, &why));
  CHECK(Bytes(slice.data, slice.data + slice.size) == kMain);
}

void RefusesNonComponents() {
  wasm::CoreModuleSlice slice;
  std::string why;
  CHECK(!Find(kMain, &slice, &why));
  CHECK(why.find("core module, not a component") != std::string::npos);
  CHECK(!Find({0x7f, 'E', 'L', 'F', 0, 0, 0, 0}, &slice, &why));
  CHECK(why.find("magic") != std::string::npos);
  CHECK(!Find({0x00, 0x61}, &slice, &why));
}

void RefusesSectionsPastTheEnd() {
  wasm::CoreModuleSlice slice;
  std::string why;
  Bytes c = Component({Section(1, kMain)});
  c.pop_back();  // the module section now claims one byte more than there is
  CHECK(!Find(c, &slice, &why));
  CHECK(why.find("past the end") != std::string::npos);
  Bytes leb = kComponentHead;
  leb.insert(leb.end(), {0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01});  // a 6-byte LEB128
  CHECK(!Find(leb, &slice, &why));
  Bytes huge = kComponentHead;
  huge.insert(huge.end(), {0x01, 0xff, 0xff, 0xff, 0xff, 0x0f});  // 2^32 - 1 bytes claimed
  CHECK(!Find(huge, &slice, &why));
  // an export section whose name runs past the module: not the main module, no over-read
  Bytes bad = kCoreHead;
  bad.insert(bad.end(), {0x07, 0x03, 0x01, 0x7f, 'v'});
  CHECK(!Find(Component({Section(1, bad)}), &slice, &why));
}

void RefusesZeroOrTwoMainModules() {
  wasm::CoreModuleSlice slice;
  std::string why;
  CHECK(!Find(Component({Section(1, kShim)}), &slice, &why));
  CHECK(why.find("no core module") != std::string::npos);
  CHECK(!Find(Component({Section(1, CoreExporting("#describe"))}), &slice, &why));
  CHECK(!Find(Component({Section(1, kMain), Section(1, kMain)}), &slice, &why));
  CHECK(why.find("two core modules") != std::string::npos);
}

}  // namespace
}  // namespace vfiobox::test

int main() {
  using namespace vfiobox::test;
  FindsTheMainModule();
  RefusesNonComponents();
  RefusesSectionsPastTheEnd();
  RefusesZeroOrTwoMainModules();
  return Finish("component_binary");
}
