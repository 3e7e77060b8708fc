# Writes a file's bytes as a C array, so a program carries the file in
# itself (vae-explore's page):
#   cmake -DIN=page.html -DOUT=page.c -DNAME=symbol -P embed.cmake
# gives `const char symbol[]` (with a NUL after the bytes) and
# `const size_t symbol_len` (the bytes, without it).
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" digits)
math(EXPR length "${digits} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n" bytes "${bytes}")
get_filename_component(source "${IN}" NAME)
file(WRITE "${OUT}" "/* Generated from ${source} by cmake/embed.cmake: do not edit. */\n"
     "#include <stddef.h>\n"
     "const char ${NAME}[] = {\n${bytes}0};\n"
     "const size_t ${NAME}_len = ${length};\n")
