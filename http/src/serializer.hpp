// Response bytes: the status line, the cached Date header, and number formatting, appended to a
// batch buffer.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>
#include <string>
#include <string_view>
#include <utility>

namespace weft::http::detail {

/// A growable byte buffer for response bytes: appends are an inlined capacity check and a
/// memcpy (no zero-filling, no out-of-line calls for the many small pieces of a header).
class ByteBuffer {
  public:
    ByteBuffer() noexcept = default;
    ByteBuffer(const ByteBuffer&) = delete;
    ByteBuffer& operator=(const ByteBuffer&) = delete;
    ~ByteBuffer() { std::free(data_); }

    __attribute__((always_inline)) void append(const char* p, std::size_t n) {
        if (__builtin_expect(n > cap_ - size_, 0)) grow(n);
        std::memcpy(data_ + size_, p, n);
        size_ += n;
    }
    __attribute__((always_inline)) void append(std::string_view s) { append(s.data(), s.size()); }
    /// Room for `n` more bytes at the end: write into it, then commit() what was written.
    __attribute__((always_inline)) char* tail(std::size_t n) {
        if (__builtin_expect(n > cap_ - size_, 0)) grow(n);
        return data_ + size_;
    }
    void commit(std::size_t n) noexcept { size_ += n; }
    const char* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return cap_; }
    void clear() noexcept { size_ = 0; }
    /// Trades storage with `o` (a send that takes the bytes hands back an empty buffer).
    void swap(ByteBuffer& o) noexcept {
        std::swap(data_, o.data_);
        std::swap(size_, o.size_);
        std::swap(cap_, o.cap_);
    }
    /// Frees the storage when it grew beyond `keep` bytes (after an unusual batch).
    void trim(std::size_t keep) noexcept {
        if (cap_ > keep) {
            std::free(data_);
            data_ = nullptr;
            cap_ = size_ = 0;
        }
    }

  private:
    __attribute__((noinline)) void grow(std::size_t n) {
        std::size_t cap = cap_ ? cap_ * 2 : 1024;
        while (cap - size_ < n)
            cap *= 2;
        char* p = static_cast<char*>(std::realloc(data_, cap));
        if (!p) throw std::bad_alloc();
        data_ = p;
        cap_ = cap;
    }
    char* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t cap_ = 0;
};

/// "<prefix>Date: <IMF-fixdate>\r\n", re-formatted when the wall-clock second changes; the
/// prefix is the Server header line, so both cost one append. One per hub (not thread-safe).
class DateCache {
  public:
    /// `prefix`: e.g. "Server: weft\r\n" (at most 200 bytes are kept).
    explicit DateCache(std::string_view prefix = {}) noexcept {
        prefix_len_ = prefix.size() < 200 ? prefix.size() : 200;
        if (prefix_len_) std::memcpy(buf_, prefix.data(), prefix_len_);
    }
    std::string_view line() noexcept {
        std::time_t now = std::time(nullptr);
        if (now != sec_) format(now);
        return {buf_, len_};
    }
    /// How much of line() is the prefix (the Server field); the Date field follows it.
    std::size_t prefix_size() const noexcept { return prefix_len_; }

  private:
    void format(std::time_t now) noexcept;
    std::time_t sec_ = -1;
    std::size_t prefix_len_ = 0;
    std::size_t len_ = 0;
    char buf_[256];
};

void append_decimal(ByteBuffer& out, std::uint64_t v);
void append_hex(ByteBuffer& out, std::uint64_t v);

}  // namespace weft::http::detail
