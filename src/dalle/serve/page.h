// The web page `dalle serve` answers at /: src/dalle/serve/page.html, compiled into the binary
// (CMake generates the definition), so the server needs no files and the page no CDN.
#pragma once

namespace dalle {

extern const char* const kServePageHtml;

}  // namespace dalle
