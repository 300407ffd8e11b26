// Internal to host/spdy: big-endian integer reads and writes (all SPDY
// integers are big-endian).
#ifndef VKHOST_HOST_SPDY_WIRE_H_
#define VKHOST_HOST_SPDY_WIRE_H_

#include <cstdint>
#include <string>

namespace vkhost::spdy::internal {

inline uint32_t ReadU32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) |
         (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

inline uint32_t ReadU24(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{b[0]} << 16) | (uint32_t{b[1]} << 8) | uint32_t{b[2]};
}

inline void AppendU32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

inline void AppendU24(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

}  // namespace vkhost::spdy::internal

#endif  // VKHOST_HOST_SPDY_WIRE_H_
