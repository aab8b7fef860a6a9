# Turn a file into a C header holding it as a byte array (no string
# literal: -Wpedantic limits those to 4095 characters).
#   cmake -DIN=view.html -DOUT=view_html.h -DNAME=wt_view_html -P embed.cmake
file(READ "${IN}" _hex HEX)
string(LENGTH "${_hex}" _len)
math(EXPR _bytes "${_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," _arr "${_hex}")
# 16 bytes per line
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n" _arr "${_arr}")
file(WRITE "${OUT}.tmp"
"/* Generated from ${IN} by embed.cmake: do not edit. */\n"
"static const unsigned char ${NAME}[${_bytes}] = {\n${_arr}\n};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
