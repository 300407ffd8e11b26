// Internal to host/spdy: the zlib preset dictionary SPDY/3 header blocks
// are compressed with (see dictionary.cc).
#ifndef VKHOST_HOST_SPDY_DICTIONARY_H_
#define VKHOST_HOST_SPDY_DICTIONARY_H_

#include <cstddef>

namespace vkhost::spdy::internal {

inline constexpr std::size_t kHeaderDictionarySize = 1423;
extern const unsigned char kHeaderDictionary[kHeaderDictionarySize];

}  // namespace vkhost::spdy::internal

#endif  // VKHOST_HOST_SPDY_DICTIONARY_H_
