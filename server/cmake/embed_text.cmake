# Script mode (cmake -DINPUT=... -DOUTPUT=... [-DFUNCTION=name] -P embed_text.cmake): writes a C++
# source that defines weft::server::FUNCTION() (default: embedded_default_toml) returning INPUT's
# bytes, NUL-terminated.
# Bytes are written as numbers, so no character of the file needs escaping.
if(NOT FUNCTION)
    set(FUNCTION embedded_default_toml)
endif()
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
get_filename_component(input_name "${INPUT}" NAME)

set(body "")
set(offset 0)
while(offset LESS hex_length)
    string(SUBSTRING "${hex}" ${offset} 64 chunk)
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," chunk "${chunk}")
    string(APPEND body "    ${chunk}\n")
    math(EXPR offset "${offset} + 64")
endwhile()

file(WRITE "${OUTPUT}.tmp"
"// Generated from ${input_name} by embed_text.cmake; do not edit.
namespace weft::server {
const char* ${FUNCTION}() noexcept;
namespace {
const unsigned char kData[] = {
${body}    0x00};
}  // namespace

const char* ${FUNCTION}() noexcept { return reinterpret_cast<const char*>(kData); }

}  // namespace weft::server
")
# Only touch OUTPUT when it changes, so an unchanged file does not rebuild the library.
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
