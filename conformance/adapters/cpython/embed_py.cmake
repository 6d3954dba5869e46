# embed_py.cmake - turns glue.py into glue_py.h, a C array of its bytes
# (ls_glue_source, NUL-terminated), so the adapter carries its Python half.
# Usage: cmake -DIN=glue.py -DOUT=glue_py.h -P embed_py.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}.tmp"
  "/* glue_py.h - generated from glue.py by embed_py.cmake: do not edit. */\n"
  "static const char ls_glue_source[] = {\n${bytes}0x00};\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
