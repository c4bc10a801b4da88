// The SQLite store's compact form of a ledger entry's hashed_keys. The engine writes them as JSON
// text, [["email","<64 hex digits>"],["phone","..."]], in which the hex digests take most of the
// bytes. The store keeps that form as a BLOB with each digest in 32 raw bytes and each field name
// as one byte, and gives the identical JSON text back when it reads the entry. Text of any other
// shape is stored as it is, as TEXT.
#ifndef ACTIVATION_SRC_STORAGE_SQLITE_PACKED_KEYS_HPP_
#define ACTIVATION_SRC_STORAGE_SQLITE_PACKED_KEYS_HPP_

#include <string>
#include <string_view>

namespace activation::internal {

// Packs `json_text` into `packed` and returns true when the text is an array of [name, value]
// string pairs laid out as encode_keys() writes them, without whitespace. Returns false for
// anything else, and `packed` is then unspecified.
bool pack_keys(std::string_view json_text, std::string& packed);

// Writes the JSON text that `packed` contains to `json_text`. Returns false when `packed` is not
// pack_keys() output.
bool unpack_keys(std::string_view packed, std::string& json_text);

}  // namespace activation::internal

#endif  // ACTIVATION_SRC_STORAGE_SQLITE_PACKED_KEYS_HPP_
