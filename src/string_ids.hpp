// Token text -> id: open addressing over one byte arena, for vocabularies of 100k+ tokens that are
// built once at load and looked up for every symbol of every word. A std::unordered_map's
// node-per-key layout spent most of a 150k-token load in cache misses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace routerm {

class StringIds {
public:
    // Map `key` to `id`; a key seen before takes the new id (the last of duplicates wins).
    void put(std::string_view key, int64_t id) {
        if (2 * (size_ + 1) > slots_.size()) grow();
        uint64_t h = hash(key);
        Slot &s = probe(key, h);
        if (s.id < 0) {
            s = Slot{h, uint32_t(arena_.size()), uint32_t(key.size()), id};
            arena_.append(key);
            ++size_;
        } else {
            s.id = id;
        }
    }
    // The id of `key`, or -1.
    int64_t get(std::string_view key) const {
        if (slots_.empty()) return -1;
        return const_cast<StringIds *>(this)->probe(key, hash(key)).id;
    }
    size_t size() const { return size_; }
    void reserve(size_t n) {
        while (slots_.size() < 2 * n) grow();
    }

private:
    struct Slot {
        uint64_t hash;
        uint32_t offset, length;
        int64_t id;   // -1: empty
    };
    static uint64_t hash(std::string_view key) {   // FNV-1a, then a final mix for the low bits
        uint64_t h = 0xcbf29ce484222325ull;
        for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ull;
        return h ^ (h >> 29);
    }
    Slot &probe(std::string_view key, uint64_t h) {
        size_t mask = slots_.size() - 1, i = size_t(h) & mask;
        while (slots_[i].id >= 0 && !(slots_[i].hash == h && slots_[i].length == key.size() &&
                                      std::string_view(arena_).substr(slots_[i].offset, key.size()) == key))
            i = (i + 1) & mask;
        return slots_[i];
    }
    void grow() {
        std::vector<Slot> old;
        old.swap(slots_);
        slots_.assign(old.empty() ? 64 : 2 * old.size(), Slot{0, 0, 0, -1});
        size_t mask = slots_.size() - 1;
        for (const Slot &s : old) {
            if (s.id < 0) continue;
            size_t i = size_t(s.hash) & mask;
            while (slots_[i].id >= 0) i = (i + 1) & mask;
            slots_[i] = s;
        }
    }
    std::vector<Slot> slots_;
    std::string arena_;
    size_t size_ = 0;
};

}  // namespace routerm
