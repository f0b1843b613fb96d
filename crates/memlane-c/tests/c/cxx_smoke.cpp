// The header from C++: it compiles without warnings, declares the
// functions extern "C", and links. Built by tests/c.rs with `$CXX` or `c++`.
#include <cstdio>

#include "memlane.h"

int main() {
    memlane_segment *seg = nullptr;
    memlane_status st = memlane_segment_open(nullptr, "absent", MEMLANE_ACCESS_READ_ONLY, &seg);
    std::printf("%s\n", memlane_status_name(st));
    memlane_segment_close(seg);
    return st == MEMLANE_NOT_FOUND && seg == nullptr ? 0 : 1;
}
