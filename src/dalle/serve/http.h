// cpp-httplib as Debian's libcpp-httplib was compiled: with TLS, zlib and brotli support, which
// change its classes' layout, so every user of the header must see the same switches.
#pragma once
#define CPPHTTPLIB_OPENSSL_SUPPORT
#define CPPHTTPLIB_ZLIB_SUPPORT
#define CPPHTTPLIB_BROTLI_SUPPORT
#include <httplib.h>
