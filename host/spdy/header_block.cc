// SPDY/3 header blocks: the name/value encoding (32-bit counts and lengths)
// and its zlib compression with the SPDY dictionary.
#define ZLIB_CONST
#include <zlib.h>


#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "host/spdy/dictionary.h"
#include "host/spdy/spdy.h"
#include "host/spdy/wire.h"

namespace vkhost::spdy {
namespace {

std::string ZlibError(absl::string_view what, const z_stream& z, int code) {
  return absl::StrCat("SPDY header ", what, " failed: ",
                      z.msg != nullptr ? z.msg : "zlib error",
                      " (zlib code ", code, ")");
}

std::string EncodeBlock(const HeaderBlock& headers) {
  std::string raw;
  internal::AppendU32(raw, static_cast<uint32_t>(headers.size()));
  for (const Header& h : headers) {
    internal::AppendU32(raw, static_cast<uint32_t>(h.name.size()));
    raw += absl::AsciiStrToLower(h.name);
    internal::AppendU32(raw, static_cast<uint32_t>(h.value.size()));
    raw += h.value;
  }
  return raw;
}

// Reads one length-prefixed string of `raw` at `pos`.
absl::StatusOr<std::string> ReadString(absl::string_view raw, std::size_t& pos,
                                       absl::string_view what) {
  if (raw.size() - pos < 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("SPDY header block truncated before a ", what, " length"));
  }
  const uint32_t len = internal::ReadU32(raw.data() + pos);
  pos += 4;
  if (len > raw.size() - pos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SPDY header block: ", what, " length ", len, " runs past the block"));
  }
  std::string s(raw.substr(pos, len));
  pos += len;
  return s;
}

absl::StatusOr<HeaderBlock> DecodeBlock(absl::string_view raw,
                                        const ParserLimits& limits) {
  if (raw.size() < 4) {
    return absl::InvalidArgumentError("SPDY header block shorter than its pair count");
  }
  const uint32_t count = internal::ReadU32(raw.data());
  // Each pair takes at least 8 bytes, so a count the block cannot hold is
  // rejected before anything is reserved for it.
  if (count > limits.max_header_pairs || count > (raw.size() - 4) / 8) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SPDY header block claims ", count, " pairs (limit ",
        limits.max_header_pairs, ", room for ", (raw.size() - 4) / 8, ")"));
  }
  HeaderBlock headers;
  headers.reserve(count);
  std::size_t pos = 4;
  for (uint32_t i = 0; i < count; ++i) {
    absl::StatusOr<std::string> name = ReadString(raw, pos, "name");
    if (!name.ok()) return name.status();
    if (name->empty()) {
      return absl::InvalidArgumentError("SPDY header block has an empty header name");
    }
    absl::StatusOr<std::string> value = ReadString(raw, pos, "value");
    if (!value.ok()) return value.status();
    // Names must be lower-case; spdystream tolerates others, and so do we.
    headers.push_back({absl::AsciiStrToLower(*name), *std::move(value)});
  }
  if (pos != raw.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SPDY header block has ", raw.size() - pos, " bytes after its last pair"));
  }
  return headers;
}

}  // namespace

std::optional<std::string> FindHeader(const HeaderBlock& headers,
                                      absl::string_view name) {
  for (const Header& h : headers) {
    if (absl::EqualsIgnoreCase(h.name, name)) return h.value;
  }
  return std::nullopt;
}

// ------------------------------------------------------------ compressor --

struct HeaderCompressor::Zlib {
  z_stream z{};
  absl::Status init;
  ~Zlib() {
    if (init.ok()) deflateEnd(&z);
  }
};

HeaderCompressor::HeaderCompressor() : zlib_(std::make_unique<Zlib>()) {
  z_stream& z = zlib_->z;
  int rc = deflateInit(&z, Z_DEFAULT_COMPRESSION);
  if (rc != Z_OK) {
    zlib_->init = absl::InternalError(ZlibError("compressor init", z, rc));
    return;
  }
  rc = deflateSetDictionary(&z, internal::kHeaderDictionary,
                            internal::kHeaderDictionarySize);
  if (rc != Z_OK) {
    deflateEnd(&z);
    zlib_->init = absl::InternalError(ZlibError("compressor dictionary", z, rc));
  }
}

HeaderCompressor::~HeaderCompressor() = default;

absl::StatusOr<std::string> HeaderCompressor::Compress(const HeaderBlock& headers) {
  if (!zlib_->init.ok()) return zlib_->init;
  for (const Header& h : headers) {
    if (h.name.empty()) {
      return absl::InvalidArgumentError("SPDY header names cannot be empty");
    }
  }
  const std::string raw = EncodeBlock(headers);
  z_stream& z = zlib_->z;
  z.next_in = reinterpret_cast<const Bytef*>(raw.data());
  z.avail_in = static_cast<uInt>(raw.size());
  std::string out;
  // Z_SYNC_FLUSH ends the block on a byte boundary so the peer can inflate
  // it alone; the stream itself stays open for the next block.
  do {
    const std::size_t old = out.size();
    out.resize(old + raw.size() / 2 + 64);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + old);
    z.avail_out = static_cast<uInt>(out.size() - old);
    const int rc = deflate(&z, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return absl::InternalError(ZlibError("compression", z, rc));
    }
    out.resize(out.size() - z.avail_out);
  } while (z.avail_out == 0 || z.avail_in > 0);
  return out;
}

// ---------------------------------------------------------- decompressor --

struct HeaderDecompressor::Zlib {
  z_stream z{};
  bool initialised = false;
  ~Zlib() {
    if (initialised) inflateEnd(&z);
  }
};

HeaderDecompressor::HeaderDecompressor(ParserLimits limits)
    : limits_(limits), zlib_(std::make_unique<Zlib>()) {
  const int rc = inflateInit(&zlib_->z);
  if (rc != Z_OK) {
    broken_ = absl::InternalError(ZlibError("decompressor init", zlib_->z, rc));
    return;
  }
  zlib_->initialised = true;
}

HeaderDecompressor::~HeaderDecompressor() = default;

absl::StatusOr<HeaderBlock> HeaderDecompressor::Decompress(
    absl::string_view compressed) {
  if (!broken_.ok()) return broken_;
  z_stream& z = zlib_->z;
  z.next_in = reinterpret_cast<const Bytef*>(compressed.data());
  z.avail_in = static_cast<uInt>(compressed.size());
  std::string raw;
  char chunk[4096];
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(chunk);
    z.avail_out = sizeof(chunk);
    const uInt in_before = z.avail_in;
    int rc = inflate(&z, Z_SYNC_FLUSH);
    if (rc == Z_NEED_DICT) {
      rc = inflateSetDictionary(&z, internal::kHeaderDictionary,
                                internal::kHeaderDictionarySize);
      if (rc == Z_OK) continue;
      // Otherwise the dictionary id is not SPDY/3's: fall through to fail.
    }
    if (rc == Z_STREAM_END) {
      broken_ = absl::InvalidArgumentError(
          "SPDY header compression stream was ended by the peer");
      return broken_;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      broken_ = absl::InvalidArgumentError(ZlibError("decompression", z, rc));
      return broken_;
    }
    const std::size_t produced = sizeof(chunk) - z.avail_out;
    if (raw.size() + produced > limits_.max_header_block_bytes) {
      broken_ = absl::InvalidArgumentError(absl::StrCat(
          "SPDY header block inflates beyond ", limits_.max_header_block_bytes,
          " bytes"));
      return broken_;
    }
    raw.append(chunk, produced);
    // Room left in the output with no input left: the block is complete.
    if (z.avail_in == 0 && z.avail_out != 0) break;
    if (produced == 0 && z.avail_in == in_before) {
      broken_ = absl::InvalidArgumentError("SPDY header decompression made no progress");
      return broken_;
    }
  }
  absl::StatusOr<HeaderBlock> headers = DecodeBlock(raw, limits_);
  if (!headers.ok()) broken_ = headers.status();
  return headers;
}

}  // namespace vkhost::spdy
